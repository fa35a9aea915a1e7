// em_softmax_prob: ATTN_AV's softmax probabilities, formed from the scores and one row's
// statistics while the products with V are accumulated.
//
// For LANES scores of one query row per cycle, bit for bit
// edgemoe.hw.numerics.softmax.softmax_probs(z, stats, cfg, prob_bits=PROB_BITS). With
// p = PROB_BITS - 1, E = exp_frac_bits, T the exp2 ROM em_exp2_rom and (b, mant, exp) the row's
// statistics from em_softmax_stats (pack_stats's fields):
//
//   a = max(b - z, 0)                       a score above the stored max counts as the max
//   (n, f) = (a >> F, a & (2**F - 1))
//   P = min(round_shift(T[f] * mant, clamp(E + n + exp - p, 0, 63)), 2**p - 1)
//
// so P is in Q(p) and fits a signed PROB_BITS-bit multiplier operand. Lanes with in_mask = 0
// (keys past the end of a partial block) give P = 0, so whatever the V buffer holds there adds
// nothing. Every row's statistics arrive with its scores, so consecutive cycles may belong to
// different rows.
//
// Pipeline (three register stages, one vector per cycle, latency 3):
//   1. the ROM word T[f] (registered at the ROM output) and the shift;
//   2. the product T[f] * mant (TW x 16 bits: one DSP48E2 with its output register);
//   3. the rounded, saturated probability.
// Handshake as em_gelu: a stage loads when it is empty or its content leaves in the same cycle,
// so bubbles collapse and back-pressure is lossless; in_ready depends combinationally on
// out_ready through one gate per stage.
`include "edgemoe_config.svh"
`include "em_tables.svh"

module em_softmax_prob #(
    // One lane per MAC-array row: the probabilities are the activations of the product with V,
    // whose reduction dimension (the keys) the array consumes array_rows at a time.
    parameter int LANES     = `EM_ARRAY_ROWS,
    parameter int PROB_BITS = `EM_ACT_WIDTH
) (
    input  logic                      clk,
    input  logic                      rst,        // synchronous, active high

    input  logic                      in_valid,
    output logic                      in_ready,
    input  logic [LANES*16-1:0]       in_score,   // signed, Q(F)
    input  logic [LANES-1:0]          in_mask,    // lane holds a key
    input  logic [15:0]               in_b,       // signed, Q(F): the row max
    input  logic [15:0]               in_mant,    // 1/s = mant * 2**-exp
    input  logic [15:0]               in_exp,     // signed

    output logic                      out_valid,
    input  logic                      out_ready,
    output logic [LANES*PROB_BITS-1:0] out_prob   // Q(PROB_BITS - 1), at most 2**(PROB_BITS-1) - 1
);
    localparam int F  = `EM_SCORE_FRAC_BITS;
    localparam int E  = `EM_EXP_FRAC_BITS;
    localparam int TW = `EM_EXP2_ROM_DATA_WIDTH;  // T[f] <= 2**E
    localparam int P  = PROB_BITS - 1;
    localparam int QW = TW + 16;                   // T[f] * mant
    // numerics' shift clamp (exp.SHIFT_CLAMP): the rounding shift is at most 63.
    localparam int SHIFT_MAX = `EM_SHIFT_CLAMP;
    localparam logic [QW-1:0] PMAX = QW'((1 << P) - 1);

    // ------------------------------------------------------------------ pipeline control
    localparam int STAGES = 3;
    logic [STAGES-1:0] load;    // stage s takes its input this cycle
    em_pipe_ctrl #(.STAGES(STAGES)) u_ctrl (
        .clk, .rst, .in_valid, .in_ready, .out_valid, .out_ready, .load
    );

    // ------------------------------------------------------------------ per-row operands
    // The row's part of the shift, E + exp - p, once for all lanes: 18 bits hold it and the
    // lane's sum with n < 2**(16-F) exactly.
    logic signed [17:0] sh_row;
    assign sh_row = 18'(E - P) + 18'($signed(in_exp));

    logic [15:0] mant_q1;
    always_ff @(posedge clk) begin
        if (load[0]) mant_q1 <= in_mant;
    end

    // ------------------------------------------------------------------ datapath, per lane
    for (genvar i = 0; i < LANES; i++) begin : g_lane
        // b - z spans 17 bits; clamped at 0 it fits 16 unsigned.
        logic signed [16:0] diff;
        logic        [15:0] a;
        logic        [15-F:0] n;
        logic signed [17:0] sh;
        logic        [5:0]  sh_d;
        assign diff = 17'($signed(in_b)) - 17'($signed(in_score[i*16 +: 16]));
        assign a    = diff < 0 ? 16'd0 : diff[15:0];
        assign n    = a[15:F];
        assign sh   = sh_row + 18'($signed({1'b0, n}));
        always_comb begin
            if (sh < 0)                     sh_d = 6'd0;
            else if (sh > 18'(SHIFT_MAX))   sh_d = 6'(SHIFT_MAX);
            else                            sh_d = sh[5:0];
        end

        // Stage 1: the ROM word, zero for a lane without a key (so P is 0), and the shift.
        logic [TW-1:0] t_q1;
        logic [5:0]    sh_q1;
        always_ff @(posedge clk) begin
            if (load[0]) begin
                t_q1  <= in_mask[i] ? em_exp2_rom(a[F-1:0]) : '0;
                sh_q1 <= sh_d;
            end
        end

        // Stage 2: the product.
        logic [QW-1:0] q_q2;
        logic [5:0]    sh_q2;
        always_ff @(posedge clk) begin
            if (load[1]) begin
                q_q2  <= QW'(t_q1) * QW'(mant_q1);
                sh_q2 <= sh_q1;
            end
        end

        // Stage 3: round_shift(q, s) = (q >> s) + bit s-1 of q, from one shift by s-1 (shifts
        // past the width give 0, as numerics' does for any q < 2**62); then the clamp to 2**p - 1.
        logic [QW-1:0]  half;
        logic [QW-1:0]  r;
        logic [P-1:0]   p_d;
        logic [P-1:0]   p_q3;
        assign half = q_q2 >> (sh_q2 - 6'd1);
        assign r    = sh_q2 == 6'd0 ? q_q2 : (half >> 1) + QW'(half[0]);
        assign p_d  = r > PMAX ? PMAX[P-1:0] : r[P-1:0];
        always_ff @(posedge clk) begin
            if (load[2]) p_q3 <= p_d;
        end
        assign out_prob[i*PROB_BITS +: PROB_BITS] = {1'b0, p_q3};
    end
endmodule
