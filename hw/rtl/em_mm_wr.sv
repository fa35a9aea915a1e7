// em_mm_wr: byte-granular DRAM writer of the MATMUL unit: one output row segment per command.
//
// The command carries up to MAX_BYTES bytes (byte b of the segment in cmd_data[b*8 +: 8]) and a
// byte address of any alignment. The bytes are shifted to their lanes (addr % BYTES) once, then
// leave one beat per cycle in INCR bursts split by em_axi_burst (256 beats, 4 KiB; WLAST by the
// same rule), with WSTRB set exactly on the segment's bytes so neighbouring bytes in DRAM are
// untouched. `busy` stays high until every write response is back, so once it falls the bytes
// are in DRAM. `err` pulses with each SLVERR/DECERR response.
//
// Handshake: `cmd_valid` for one cycle while `cmd_ready`, which rises as soon as the previous
// segment's beats have left: its write responses may still be on their way (`busy`), so
// consecutive rows overlap their response latency.
module em_mm_wr #(
    parameter int BYTES     = 8,    // bytes per data beat
    parameter int MAX_BYTES = 32    // longest segment
) (
    input  logic                   clk,
    input  logic                   rst,          // synchronous, active high

    input  logic                   cmd_valid,
    input  logic [31:0]            cmd_addr,
    input  logic [15:0]            cmd_bytes,    // 1 .. MAX_BYTES
    input  logic [MAX_BYTES*8-1:0] cmd_data,
    output logic                   cmd_ready,
    output logic                   busy,
    output logic                   err,

    output logic                   aw_valid,
    input  logic                   aw_ready,
    output logic [31:0]            aw_addr,
    output logic [7:0]             aw_len,
    output logic                   w_valid,
    input  logic                   w_ready,
    output logic [BYTES*8-1:0]     w_data,
    output logic [BYTES-1:0]       w_strb,
    output logic                   w_last,
    input  logic                   b_valid,
    output logic                   b_ready,
    input  logic                   b_err
);
    localparam int LB = $clog2(BYTES);
    localparam int DW = BYTES * 8;
    // The segment shifted by up to BYTES-1 lanes, rounded up to whole beats.
    localparam int NB = ((MAX_BYTES + BYTES - 1) / BYTES + 1) * BYTES;

    logic [NB*8-1:0] data_q;
    logic [NB-1:0]   strb_q;
    logic [NB-1:0]   mask;
    logic [15:0]     w_left;
    logic [31:0]     w_at;       // address of the next beat (for WLAST)
    logic [7:0]      w_beat;     // beat within the current burst
    logic [15:0]     aw_count;
    logic [15:0]     b_count;

    logic            burst_valid;
    logic [31:0]     burst_addr;
    logic [31:0]     burst_beats;
    logic            burst_busy;

    em_axi_burst #(.BYTES(BYTES)) u_aw (
        .clk, .rst,
        .cmd_valid(burst_valid), .cmd_addr(burst_addr), .cmd_beats(burst_beats),
        .a_valid(aw_valid), .a_ready(aw_ready), .a_addr(aw_addr), .a_len(aw_len),
        .busy(burst_busy)
    );

    always_comb begin
        for (int b = 0; b < NB; b++) mask[b] = b < int'(cmd_bytes);
    end

    assign w_valid = w_left != 16'd0;
    assign w_data  = data_q[DW-1:0];
    assign w_strb  = strb_q[BYTES-1:0];
    assign w_last  = w_left == 16'd1 || &w_at[11:LB] || w_beat == 8'd255;
    assign b_ready = 1'b1;
    assign cmd_ready = !w_valid && !burst_busy && !burst_valid;
    assign busy      = !cmd_ready || aw_count != b_count;
    assign err       = b_valid && b_err;

    always_ff @(posedge clk) begin
        if (rst) begin
            w_left      <= '0;
            aw_count    <= '0;
            b_count     <= '0;
            burst_valid <= 1'b0;
        end else begin
            burst_valid <= 1'b0;
            if (aw_valid && aw_ready) aw_count <= aw_count + 16'd1;
            if (b_valid) b_count <= b_count + 16'd1;
            if (cmd_valid && cmd_ready) begin
                data_q      <= (NB*8)'(cmd_data) << {cmd_addr[LB-1:0], 3'b000};
                strb_q      <= mask << cmd_addr[LB-1:0];
                w_left      <= 16'((32'(cmd_addr[LB-1:0]) + 32'(cmd_bytes) + 32'(BYTES - 1)) >> LB);
                w_at        <= {cmd_addr[31:LB], {LB{1'b0}}};
                w_beat      <= '0;
                burst_valid <= 1'b1;
                burst_addr  <= {cmd_addr[31:LB], {LB{1'b0}}};
                burst_beats <= (32'(cmd_addr[LB-1:0]) + 32'(cmd_bytes) + 32'(BYTES - 1)) >> LB;
            end else if (w_valid && w_ready) begin
                data_q <= data_q >> DW;
                strb_q <= strb_q >> BYTES;
                w_left <= w_left - 16'd1;
                w_at   <= w_at + 32'(BYTES);
                w_beat <= w_last ? 8'd0 : w_beat + 8'd1;
            end
        end
    end
endmodule
