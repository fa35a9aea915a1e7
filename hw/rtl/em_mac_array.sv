// em_mac_array: the weight-stationary ROWS x COLS multiply-accumulate array.
//
// It holds one weight tile W[ROWS][COLS] (int8) of a matrix product and, for every token vector
// x[ROWS] streamed in, produces the COLS exact dot products psum[c] = sum_r x[r] * W[r][c]. The
// accumulator (em_accumulator) adds the partial sums of successive k tiles per token.
//
// Weights, double buffered. A tile arrives in LOAD_WIDTH-bit chunks (default: one AXI beat,
// or the whole tile when that is smaller): `w_valid` writes `w_data` into chunk `w_idx` of the
// shadow tile, in any order, one chunk per cycle, never refused. The shadow holds the tile bytes
// exactly as edgemoe.hw.layouts.pack_weights lays them out in DRAM (row r of COLS bytes at byte
// r*COLS, byte 0 in bits [7:0]), so a burst of a weight tile goes straight from the AXI read
// channel into the shadow with no reordering. `in_swap` copies the shadow into the active tile
// and applies to the token presented in the same cycle (the sequencer raises it with the first
// token of a tile, or alone). A chunk written in the swap cycle lands in the shadow after the
// copy, i.e. it belongs to the next tile; so the next tile loads while the current one computes
// and a swap costs no cycle: full rate needs only m >= CHUNKS tokens per tile.
//
// Token stream: valid with a fixed latency, no back-pressure. A token (in_x, in_tag, in_first_k)
// presented with in_valid in cycle c leaves as (out_psum, out_tag, out_first_k) with out_valid in
// cycle c + LATENCY, LATENCY = 2 + log2(ROWS); one token per cycle. The accumulator always
// accepts, so a ready would only add a clock enable to every pipeline register; the sequencer
// throttles the stream by leaving in_valid low instead.
//
// Pipeline: input register (where the swap takes effect), a register behind each of the
// ROWS*COLS multipliers (one ACT_WIDTH x WEIGHT_WIDTH product per DSP48E2, whose own output
// register can hold it), then a registered binary adder tree per column, one level per cycle.
// Every value is exact: a product fits ACT_WIDTH + WEIGHT_WIDTH signed bits and each tree level
// adds one bit, so out_psum (PSUM_WIDTH = ACT_WIDTH + WEIGHT_WIDTH + log2(ROWS) bits) never
// overflows; the only wrap is the accumulator's.
//
// Vectors are flat (lane i occupies bits [i*W +: W]), like em_requant. Activations are signed
// (int8 activations arrive sign-extended to ACT_WIDTH).
`include "edgemoe_config.svh"

module em_mac_array #(
    parameter int ROWS         = `EM_ARRAY_ROWS,        // power of two (HardwareConfig checks)
    parameter int COLS         = `EM_ARRAY_COLS,
    parameter int ACT_WIDTH    = `EM_ACT_WIDTH,
    parameter int WEIGHT_WIDTH = `EM_WEIGHT_WIDTH,
    // Token index into the accumulator buffer (acc_buffer_depth >= array_rows >= 2 entries).
    parameter int TAG_WIDTH    = $clog2(`EM_ACC_BUFFER_DEPTH),
    // Bits per weight chunk; must divide the tile (both are powers of two in every config).
    parameter int LOAD_WIDTH   = `EM_AXI_DATA_WIDTH < ROWS * COLS * WEIGHT_WIDTH
                                 ? `EM_AXI_DATA_WIDTH : ROWS * COLS * WEIGHT_WIDTH,
    localparam int TILE_BITS   = ROWS * COLS * WEIGHT_WIDTH,
    localparam int CHUNKS      = TILE_BITS / LOAD_WIDTH,
    localparam int IDX_WIDTH   = CHUNKS > 1 ? $clog2(CHUNKS) : 1,
    localparam int PSUM_WIDTH  = ACT_WIDTH + WEIGHT_WIDTH + $clog2(ROWS)
) (
    input  logic                        clk,
    input  logic                        rst,          // synchronous, active high

    // Shadow weight tile, written chunk by chunk.
    input  logic                        w_valid,
    input  logic [IDX_WIDTH-1:0]        w_idx,        // chunk index, 0..CHUNKS-1
    input  logic [LOAD_WIDTH-1:0]       w_data,       // tile bytes [w_idx*LOAD_WIDTH/8 +: ...]

    // Token stream in.
    input  logic                        in_valid,
    input  logic                        in_swap,      // shadow -> active, for this token on
    input  logic [ROWS*ACT_WIDTH-1:0]   in_x,         // signed activations x[r]
    input  logic [TAG_WIDTH-1:0]        in_tag,       // token index (accumulator address)
    input  logic                        in_first_k,   // first k tile: overwrite, do not add

    // Partial sums out, LATENCY cycles later.
    output logic                        out_valid,
    output logic [TAG_WIDTH-1:0]        out_tag,
    output logic                        out_first_k,
    output logic [COLS*PSUM_WIDTH-1:0]  out_psum      // signed, exact
);
    localparam int LEVELS  = $clog2(ROWS);
    localparam int LATENCY = 2 + LEVELS;
    localparam int PW      = ACT_WIDTH + WEIGHT_WIDTH;   // exact product width

    // ------------------------------------------------------------------ weights
    // Weights are data, not control: no reset (the sequencer loads a tile before using it).
    logic [TILE_BITS-1:0] shadow;
    logic [TILE_BITS-1:0] active;

    always_ff @(posedge clk) begin
        // Non-blocking: the copy takes the shadow as it was before this cycle's chunk.
        if (in_swap) active <= shadow;
        for (int i = 0; i < CHUNKS; i++) begin
            if (w_valid && w_idx == IDX_WIDTH'(i)) shadow[i*LOAD_WIDTH +: LOAD_WIDTH] <= w_data;
        end
    end

    // ------------------------------------------------------------------ control pipeline
    // Stage s of the side band belongs to the data that is s register stages deep; stage
    // LATENCY-1 is the output register of the adder tree's root.
    logic [LATENCY-1:0]           valid_q;
    logic [LATENCY-1:0]           first_q;
    logic [LATENCY*TAG_WIDTH-1:0] tag_q;     // stage s at [s*TAG_WIDTH +: TAG_WIDTH]

    always_ff @(posedge clk) begin
        if (rst) valid_q <= '0;
        else     valid_q <= {valid_q[LATENCY-2:0], in_valid};
    end

    always_ff @(posedge clk) begin
        first_q <= {first_q[LATENCY-2:0], in_first_k};
        tag_q   <= {tag_q[(LATENCY-1)*TAG_WIDTH-1:0], in_tag};
    end

    assign out_valid   = valid_q[LATENCY-1];
    assign out_tag     = tag_q[(LATENCY-1)*TAG_WIDTH +: TAG_WIDTH];
    assign out_first_k = first_q[LATENCY-1];

    // ------------------------------------------------------------------ datapath
    // Every tree node is stored PSUM_WIDTH wide, but a node at depth d sums 2^(LEVELS-d)
    // products, which PSUM_WIDTH - d bits hold exactly. Same-width two's-complement sums of
    // sign-extended values are exact while they fit, so the top d bits are sign copies; saying
    // so (shift them out and back in) lets synthesis drop them from the adders and registers.
    function automatic logic [PSUM_WIDTH-1:0] sign_copies(input logic [PSUM_WIDTH-1:0] v,
                                                          input int d);
        logic signed [PSUM_WIDTH-1:0] s;
        s = v;
        sign_copies = (s <<< d) >>> d;
    endfunction

    // Input register: in the cycle after a swap, x_q meets the new active tile.
    logic [ROWS*ACT_WIDTH-1:0] x_q;
    always_ff @(posedge clk) x_q <= in_x;

    for (genvar c = 0; c < COLS; c++) begin : g_col
        // Heap-ordered adder tree: node i sums nodes 2i+1 and 2i+2; nodes 0 .. ROWS-2 are sum
        // registers (node 0 is the column's result), nodes ROWS-1 .. 2*ROWS-2 the ROWS product
        // registers, sign-extended. Each tree level is one pipeline stage.
        logic [ROWS*PSUM_WIDTH-1:0]       leaf;
        logic [(ROWS-1)*PSUM_WIDTH-1:0]   sum_q;
        logic [(2*ROWS-1)*PSUM_WIDTH-1:0] node;

        for (genvar r = 0; r < ROWS; r++) begin : g_row
            logic signed [ACT_WIDTH-1:0]    x;
            logic signed [WEIGHT_WIDTH-1:0] w;
            logic signed [PW-1:0]           p_q;   // its own register, for DSP packing
            assign x = x_q[r*ACT_WIDTH +: ACT_WIDTH];
            assign w = active[(r*COLS + c)*WEIGHT_WIDTH +: WEIGHT_WIDTH];
            // Signed operands extended to PW bits: exact.
            always_ff @(posedge clk) p_q <= x * w;
            assign leaf[r*PSUM_WIDTH +: PSUM_WIDTH] = PSUM_WIDTH'(p_q);
        end

        assign node = {leaf, sum_q};

        always_ff @(posedge clk) begin
            // Nodes 2^d - 1 .. 2^(d+1) - 2 are at depth d.
            for (int d = 0; d < LEVELS; d++) begin
                for (int i = (1 << d) - 1; i < (1 << (d + 1)) - 1; i++) begin
                    sum_q[i*PSUM_WIDTH +: PSUM_WIDTH] <=
                        sign_copies(node[(2*i+1)*PSUM_WIDTH +: PSUM_WIDTH]
                                    + node[(2*i+2)*PSUM_WIDTH +: PSUM_WIDTH], d);
                end
            end
        end

        assign out_psum[c*PSUM_WIDTH +: PSUM_WIDTH] = sum_q[0 +: PSUM_WIDTH];
    end
endmodule
