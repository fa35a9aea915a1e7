// em_mm_rd: byte-granular DRAM reader of the MATMUL unit: one (address, length) command in,
// the bytes out as a stream of full beats that start exactly at the command's first byte.
//
// A MATMUL reads rows of X and R, weight tiles and epilogue records at any byte address. The
// consumers then find element e of a row at stream byte e*size, which never straddles a beat
// (sizes are 1, 2 or 8 bytes and beats are at least 8), so they need no realignment of their own.
//
// The covering aligned beats are read in INCR bursts (em_axi_burst: 256 beats, 4 KiB); a two-beat
// window {incoming, previous} shifted right by (addr % BYTES) bytes forms output beat j from
// source beats j and j+1. The first source beat only primes the window; when the bytes end in
// the last source beat, a zero flush beat drains the final output beat. Output beats number
// ceil(nbytes / BYTES); bytes of the last beat past the end are don't-care.
//
// Handshake: `cmd_valid` for one cycle while !busy; out_valid/out_ready (r_ready follows
// out_ready combinationally, so back-pressure stalls the AXI read channel). `busy` stays high
// until the last output beat is taken. `err` pulses with each SLVERR/DECERR beat.
module em_mm_rd #(
    parameter int BYTES = 8   // bytes per data beat
) (
    input  logic               clk,
    input  logic               rst,          // synchronous, active high

    input  logic               cmd_valid,
    input  logic [31:0]        cmd_addr,
    input  logic [31:0]        cmd_bytes,    // at least 1
    output logic               busy,
    output logic               err,

    output logic               out_valid,
    input  logic               out_ready,
    output logic [BYTES*8-1:0] out_data,

    output logic               ar_valid,
    input  logic               ar_ready,
    output logic [31:0]        ar_addr,
    output logic [7:0]         ar_len,
    input  logic               r_valid,
    output logic               r_ready,
    input  logic [BYTES*8-1:0] r_data,
    input  logic               r_err
);
    localparam int LB = $clog2(BYTES);
    localparam int DW = BYTES * 8;

    logic          active;
    logic [LB-1:0] off;
    logic [31:0]   ns;     // source beats
    logic [31:0]   no;     // output beats
    logic [31:0]   ain;    // arrivals so far (source beats, then the flush beat)
    logic [DW-1:0] prev;

    logic          burst_valid;
    logic [31:0]   burst_addr;
    logic [31:0]   burst_beats;
    logic          burst_busy;

    em_axi_burst #(.BYTES(BYTES)) u_ar (
        .clk, .rst,
        .cmd_valid(burst_valid), .cmd_addr(burst_addr), .cmd_beats(burst_beats),
        .a_valid(ar_valid), .a_ready(ar_ready), .a_addr(ar_addr), .a_len(ar_len),
        .busy(burst_busy)
    );

    logic          real_beat;
    logic          in_valid;
    logic [DW-1:0] in_data;
    logic          produce;
    logic          fire;

    assign real_beat = ain < ns;
    assign in_valid  = active && (real_beat ? r_valid : 1'b1);
    assign in_data   = real_beat ? r_data : '0;
    assign produce   = ain != 32'd0;
    assign fire      = in_valid && (!produce || out_ready);
    assign out_valid = in_valid && produce;
    assign out_data  = DW'({in_data, prev} >> {off, 3'b000});
    assign r_ready   = active && real_beat && (!produce || out_ready);
    assign busy      = active || burst_busy;
    assign err       = fire && real_beat && r_err;

    always_ff @(posedge clk) begin
        if (rst) begin
            active      <= 1'b0;
            burst_valid <= 1'b0;
        end else begin
            burst_valid <= 1'b0;
            if (cmd_valid && !busy) begin
                active      <= 1'b1;
                off         <= cmd_addr[LB-1:0];
                ns          <= (32'(cmd_addr[LB-1:0]) + cmd_bytes + 32'(BYTES - 1)) >> LB;
                no          <= (cmd_bytes + 32'(BYTES - 1)) >> LB;
                ain         <= '0;
                burst_valid <= 1'b1;
                burst_addr  <= {cmd_addr[31:LB], {LB{1'b0}}};
                burst_beats <= (32'(cmd_addr[LB-1:0]) + cmd_bytes + 32'(BYTES - 1)) >> LB;
            end else if (fire) begin
                prev <= in_data;
                ain  <= ain + 32'd1;
                if (ain == no) active <= 1'b0;
            end
        end
    end
endmodule
