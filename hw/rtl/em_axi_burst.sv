// em_axi_burst: turns one (aligned address, beat count) command into AXI4 INCR address beats.
//
// Used for AR and AW alike: the fetch unit and the DMA engine each own one per address channel.
// Every burst is full-width (AxSIZE = log2(BYTES)), at most 256 beats (AXI4 INCR limit) and never
// crosses a 4 KiB boundary (AXI4 rule), so a burst ends at the first of: the command's last beat,
// beat 256, or the last beat before a 4 KiB boundary. The data side of a writer applies the same
// rule to place WLAST (see em_dma), which is why it is spelled out here.
//
// Handshake: cmd_valid is a one-cycle command, only while not busy (the users sequence their
// commands, so there is no cmd_ready); a_valid/a_ready on the address channel,
// one burst per accepted address. `busy` is high from the accepted command until its last
// address is accepted. cmd_addr must be BYTES-aligned and cmd_beats at least 1.
module em_axi_burst #(
    parameter int BYTES = 8      // bytes per data beat, a power of two from 4 to 128
) (
    input  logic        clk,
    input  logic        rst,        // synchronous, active high

    input  logic        cmd_valid,
    input  logic [31:0] cmd_addr,
    input  logic [31:0] cmd_beats,

    output logic        a_valid,
    input  logic        a_ready,
    output logic [31:0] a_addr,
    output logic [7:0]  a_len,      // beats - 1
    output logic        busy
);
    localparam int LB = $clog2(BYTES);

    logic [31:0] remaining;
    logic [31:0] beats;        // of the burst being offered
    logic [12:0] to_4k;        // beats left before the next 4 KiB boundary (1 .. 4096/BYTES)

    assign to_4k = 13'(13'h1000 - {1'b0, a_addr[11:0]}) >> LB;

    always_comb begin
        beats = remaining;
        if (beats > 32'd256) beats = 32'd256;
        if (beats > 32'(to_4k)) beats = 32'(to_4k);
    end

    assign a_len     = 8'(beats - 32'd1);
    assign a_valid   = busy;

    always_ff @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
        end else if (cmd_valid && !busy) begin
            busy      <= 1'b1;
            a_addr    <= cmd_addr;
            remaining <= cmd_beats;
        end else if (a_valid && a_ready) begin
            a_addr    <= a_addr + (beats << LB);
            remaining <= remaining - beats;
            busy      <= remaining != beats;
        end
    end
endmodule
