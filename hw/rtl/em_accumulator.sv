// em_accumulator: the accumulator buffer behind the MAC array.
//
// DEPTH words of COLS accumulators of ACC_WIDTH bits, one word per token. For every partial-sum
// vector (in_token, in_first_k, in_psum) it does, per column c,
//
//   acc[token][c] = in_first_k ? wrap(psum[c]) : wrap(acc[token][c] + psum[c])
//
// with wrap = two's complement at ACC_WIDTH bits, exactly edgemoe.hw.numerics.fixedpoint.wrap.
// The low ACC_WIDTH bits of a sum depend only on the low ACC_WIDTH bits of its operands, so
// adding at ACC_WIDTH bits (psum sign-extended or truncated to ACC_WIDTH) is that wrap.
//
// Update port: one vector per cycle, never refused (no ready). The read-modify-write is two
// cycles: the memory is read when the vector arrives (stage A), the sum is formed and written
// in the next cycle (stage B). The hazard is a vector for the same token in the cycle right after
// another (a one-token tile with a one-chunk weight tile does that every cycle): its memory read
// happens at the same clock edge as the previous write and misses it. It is resolved by
// forwarding, not stalling: the last written word is kept in a register and replaces the memory
// data when the tokens match. Older writes are already in the memory, so one register covers
// every distance, and a colliding read's data is always overridden (its read-during-write
// behaviour never matters, which leaves synthesis free to use any block RAM mode).
//
// Read-out port for the epilogue: valid/ready request (rd_token), then one registered response
// (out_token, out_acc), held while out_ready is low; one word per cycle, rd_ready depends
// combinationally on out_ready. A request accepted in cycle d returns the word as it was after
// every update that arrived at in_valid in cycle d-2 or earlier. The sequencer keeps reads and
// first_k updates of one token apart (or gives successive n tiles different token ranges,
// which lets the read-out of one overlap the accumulation of the next).
//
// Memory: one write port and two read ports (update, read-out). Block RAM has two ports, so
// synthesis stores two copies (the read ports' data registers become the block RAM output
// latches); the forwarding register and stage B cost COLS*ACC_WIDTH flip-flops each.
`include "edgemoe_config.svh"

module em_accumulator #(
    parameter int COLS       = `EM_ARRAY_COLS,
    parameter int DEPTH      = `EM_ACC_BUFFER_DEPTH,   // >= array_rows >= 2 (HardwareConfig)
    parameter int ACC_WIDTH  = `EM_ACC_WIDTH,
    // Width of em_mac_array's exact partial sums.
    parameter int PSUM_WIDTH = `EM_ACT_WIDTH + `EM_WEIGHT_WIDTH + $clog2(`EM_ARRAY_ROWS),
    parameter int TAG_WIDTH  = $clog2(DEPTH)
) (
    input  logic                        clk,
    input  logic                        rst,          // synchronous, active high

    // Partial sums from the MAC array.
    input  logic                        in_valid,
    input  logic [TAG_WIDTH-1:0]        in_token,
    input  logic                        in_first_k,
    input  logic [COLS*PSUM_WIDTH-1:0]  in_psum,      // signed

    // Read-out request.
    input  logic                        rd_valid,
    output logic                        rd_ready,
    input  logic [TAG_WIDTH-1:0]        rd_token,

    // Read-out response.
    output logic                        out_valid,
    input  logic                        out_ready,
    output logic [TAG_WIDTH-1:0]        out_token,
    output logic [COLS*ACC_WIDTH-1:0]   out_acc       // signed accumulators
);
    localparam int WORD = COLS * ACC_WIDTH;

    logic [WORD-1:0] mem [DEPTH];

    // ------------------------------------------------------------------ update: stage A
    logic [WORD-1:0] rmw_q;   // memory word of the token entering stage B

    always_ff @(posedge clk) begin
        if (in_valid) rmw_q <= mem[in_token];
    end

    // ------------------------------------------------------------------ update: stage B
    logic                        b_valid;
    logic [TAG_WIDTH-1:0]        b_token;
    logic                        b_first;
    logic [COLS*PSUM_WIDTH-1:0]  b_psum;
    // The word written at the last clock edge (forwarding register).
    logic                        f_valid;
    logic [TAG_WIDTH-1:0]        f_token;
    logic [WORD-1:0]             f_word;

    logic [WORD-1:0] base;
    logic [WORD-1:0] sum;

    always_ff @(posedge clk) begin
        if (rst) begin
            b_valid <= 1'b0;
            f_valid <= 1'b0;
        end else begin
            b_valid <= in_valid;
            f_valid <= b_valid;
        end
    end

    always_ff @(posedge clk) begin
        b_token <= in_token;
        b_first <= in_first_k;
        b_psum  <= in_psum;
        f_token <= b_token;
        f_word  <= sum;
    end

    always_comb begin
        if (b_first)                          base = '0;
        else if (f_valid && f_token == b_token) base = f_word;
        else                                  base = rmw_q;
    end

    for (genvar c = 0; c < COLS; c++) begin : g_col
        // With PSUM_WIDTH > ACC_WIDTH (a 24-bit accumulator) the top psum bits cannot change the
        // wrapped sum.
        /* verilator lint_off UNUSEDSIGNAL */
        logic signed [PSUM_WIDTH-1:0] psum;
        /* verilator lint_on UNUSEDSIGNAL */
        assign psum = b_psum[c*PSUM_WIDTH +: PSUM_WIDTH];
        // ACC_WIDTH'(signed) sign-extends or keeps the low bits: both are exact mod 2^ACC_WIDTH.
        assign sum[c*ACC_WIDTH +: ACC_WIDTH] = base[c*ACC_WIDTH +: ACC_WIDTH] + ACC_WIDTH'(psum);
    end

    always_ff @(posedge clk) begin
        if (b_valid) mem[b_token] <= sum;
    end

    // ------------------------------------------------------------------ read-out
    logic rd_fire;

    assign rd_ready = !out_valid || out_ready;
    assign rd_fire  = rd_valid && rd_ready;

    always_ff @(posedge clk) begin
        if (rst)           out_valid <= 1'b0;
        else if (rd_ready) out_valid <= rd_valid;
    end

    always_ff @(posedge clk) begin
        if (rd_fire) begin
            out_acc   <= mem[rd_token];
            out_token <= rd_token;
        end
    end
endmodule
