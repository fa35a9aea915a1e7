// em_softmax_stats: ATTN_QK's online softmax statistics, per query row, while scores stream by.
//
// Bit for bit edgemoe.hw.numerics.softmax.online_softmax_stats(z, cfg, block=COLS). Each input
// is one block of up to COLS scores of one query row (int16 in Q(F), base 2; lane i at bits
// [16i +: 16]; lanes with in_mask[i] = 0 are not keys). With E = exp_frac_bits,
// G = SUM_GUARD_BITS, T the exp2 ROM em_exp2_rom and (n, f) = (a >> F, a & (2**F - 1)):
//
//   bm = max of the block's keys
//   b' = in_first ? bm : max(b, bm)
//   S' = round_shift(S * T[f], E + n) for (n, f) of b' - b       (S = 0 on in_first)
//      + sum over keys j of round_shift(T[f_j] << G, n_j) for (n_j, f_j) of b' - z[j]
//
// The rescale is applied to every block: when b' = b it is round_shift(S * 2**E, E) = S, which
// is numerics' "no rescale" exactly, so no select is needed. Shifts that reach past an operand
// give 0, as numerics' shift clamp of 63 does. On in_last the row's (b', S') goes through
// em_recip and leaves as (row, b, mant, exp) with exp = k + 16 - E - G: pack_stats's fields.
//
// State: (b, S) per row in a memory of ROWS_MAX words, read when a block is accepted and
// written when it leaves the pipeline, so rows may arrive in any order. S has E + G + 16 bits:
// n keys sum to at most n * 2**(E+G), and ATTN_QK's key count is a 16-bit field.
//
// Hazards: a block that is not its row's first waits (in_ready low) while an earlier block of
// the same row is still in one of the three stages between the state read and its write-back:
// a scoreboard of the stages' row indices. A row may therefore come back 4 cycles after its
// previous block without waiting (ATTN_QK's schedule returns to a row every Mt cycles, Mt the
// query rows sharing a key block); with fewer rows in flight the unit stalls rather than
// forward the running sum around its multiply. A first block never waits: it does not read the
// state, and stages write back in order. in_ready depends combinationally on in_row and
// in_first (which must be held while in_valid waits, as valid/ready requires) and on out_ready.
//
// Pipeline (one block per cycle; a block's result leaves em_recip 8 cycles after acceptance):
//   input cycle: block max (a tree over the lanes); the state memory read
//   A. b', then per lane the exp2 ROM word and shift of b' - z[j]; the rescale's T[f], shift
//   B. the terms and their sum; the product S * T[f]
//   C. the rescaled sum plus the block's terms: written back, and on in_last sent to em_recip
// Stages load when empty or when their content moves on (lossless back-pressure, no bubbles).
// The first block of a row must hold at least one key (ATTN_QK never sends an empty block).
`include "edgemoe_config.svh"
`include "em_tables.svh"

module em_softmax_stats #(
    // One lane per MAC-array column: the array emits one row's block of scores per cycle.
    parameter int COLS     = `EM_ARRAY_COLS,
    // Query rows whose statistics are kept at once (ATTN_QK's accumulator tile of tokens).
    parameter int ROWS_MAX = `EM_ACC_BUFFER_DEPTH
) (
    input  logic                      clk,
    input  logic                      rst,        // synchronous, active high

    input  logic                      in_valid,
    output logic                      in_ready,
    input  logic [$clog2(ROWS_MAX > 1 ? ROWS_MAX : 2)-1:0] in_row,   // < ROWS_MAX
    input  logic [COLS*16-1:0]        in_score,   // signed, Q(F)
    input  logic [COLS-1:0]           in_mask,    // lane holds a key
    input  logic                      in_first,   // first block of the row
    input  logic                      in_last,    // last block of the row: emit its statistics

    output logic                      out_valid,
    input  logic                      out_ready,
    output logic [$bits(in_row)-1:0]  out_row,
    output logic [15:0]               out_b,      // signed, Q(F): the row max
    output logic [15:0]               out_mant,   // 1/s = mant * 2**-exp, mant in [2**15, 2**16)
    output logic [15:0]               out_exp     // signed
);
    localparam int RW = $bits(in_row);
    localparam int F  = `EM_SCORE_FRAC_BITS;
    localparam int E  = `EM_EXP_FRAC_BITS;
    // numerics.softmax.SUM_GUARD_BITS: fraction bits of S beyond E.
    localparam int G  = `EM_SUM_GUARD_BITS;
    localparam int TW = `EM_EXP2_ROM_DATA_WIDTH;    // T[f] <= 2**E
    localparam int SW = E + G + 16;                 // S
    localparam int VW = TW + G;                     // T[f] << G, a term before its shift
    localparam int FLUSH = VW + 1;                  // a term shifted this far is 0
    localparam int NW = $clog2(FLUSH + 1);
    localparam int SUMW = VW + $clog2(COLS);        // COLS terms of at most 2**(E+G)
    localparam int PW = SW + TW;                    // S * T[f]
    localparam int SH_FLUSH = PW + 1;               // S * T[f] shifted this far is 0
    localparam int SHW = $clog2(SH_FLUSH + 1);
    localparam logic signed [15:0] MIN16 = 16'sh8000;

    // ------------------------------------------------------------------ pipeline control
    logic a_valid, b_valid, c_valid;
    logic a_free, b_free, c_free;
    logic c_go;          // C's block leaves: written back, and taken by em_recip if it is last
    logic hazard;
    logic accept;
    logic recip_ready;

    logic [RW-1:0] a_row, b_row, c_row;
    logic          a_first;
    logic          a_last, b_last, c_last;

    assign c_go   = c_valid && (!c_last || recip_ready);
    assign c_free = !c_valid || c_go;
    assign b_free = !b_valid || c_free;
    assign a_free = !a_valid || b_free;
    // Every stage up to the write-back may hold an older update of the row: the memory would
    // return its state from before that update.
    assign hazard = !in_first && ((a_valid && a_row == in_row) ||
                                  (b_valid && b_row == in_row) ||
                                  (c_valid && c_row == in_row));
    assign in_ready = a_free && !hazard;
    assign accept   = in_valid && in_ready;

    // Only the valid bits are reset: the data registers and the state memory are qualified by
    // them (a row's first block never reads the state).
    always_ff @(posedge clk) begin
        if (rst) begin
            a_valid <= 1'b0;
            b_valid <= 1'b0;
            c_valid <= 1'b0;
        end else begin
            if (a_free) a_valid <= accept;
            if (b_free) b_valid <= a_valid;
            if (c_free) c_valid <= b_valid;
        end
    end

    // ------------------------------------------------------------------ state memory
    logic [16+SW-1:0] state [ROWS_MAX];
    logic [16+SW-1:0] state_q;          // (b, S) of A's row, read when it was accepted
    logic [SW-1:0]    c_sum_new;        // S' of C's block
    logic [15:0]      c_b;

    always_ff @(posedge clk) begin
        if (accept) state_q <= state[in_row];
        if (c_go)   state[c_row] <= {c_b, c_sum_new};
    end

    // ------------------------------------------------------------------ input cycle: block max
    // A balanced tree over the lanes (heap order: node k has children 2k+1 and 2k+2, lane i is
    // leaf COLS-1+i); lanes without a key count as the smallest score.
    // One process fills the whole array, children before parents: as continuous assignments
    // the nodes would read and write the same array variable, which Verilator simulates as a
    // combinational loop (UNOPTFLAT).
    logic signed [15:0] mx [2*COLS-1];
    always_comb begin
        for (int i = 0; i < COLS; i++) begin
            mx[COLS-1+i] = in_mask[i] ? $signed(in_score[i*16 +: 16]) : MIN16;
        end
        for (int k = COLS - 2; k >= 0; k--) begin
            mx[k] = mx[2*k+1] > mx[2*k+2] ? mx[2*k+1] : mx[2*k+2];
        end
    end

    logic signed [15:0]  a_bm;
    logic [COLS*16-1:0]  a_score;
    logic [COLS-1:0]     a_mask;
    always_ff @(posedge clk) begin
        if (accept) begin
            a_row   <= in_row;
            a_first <= in_first;
            a_last  <= in_last;
            a_bm    <= mx[0];
            a_score <= in_score;
            a_mask  <= in_mask;
        end
    end

    // ------------------------------------------------------------------ stage A: exponents
    logic signed [15:0] b_old;
    logic        [SW-1:0] s_old;
    logic signed [15:0] b_new;
    logic        [15:0] d;              // b' - b, in [0, 65535] unless in_first (then unused)
    logic        [SHW-1:0] sh_d;        // E + (d >> F), clamped where the result is 0 anyway
    assign {b_old, s_old} = state_q;
    assign b_new = (a_first || a_bm > b_old) ? a_bm : b_old;
    assign d     = 16'(b_new - b_old);
    logic        [15-F:0] dn;           // d >> F
    assign dn = d[15:F];
    always_comb begin
        if (int'(dn) + E >= SH_FLUSH) sh_d = SHW'(SH_FLUSH);
        else                          sh_d = SHW'(int'(dn) + E);
    end

    logic signed [15:0]     b_b;
    logic        [SW-1:0]   b_s;        // S, or 0 for a row's first block
    logic        [TW-1:0]   b_td;       // T[f] of b' - b
    logic        [SHW-1:0]  b_sh;
    always_ff @(posedge clk) begin
        if (b_free && a_valid) begin
            b_row  <= a_row;
            b_last <= a_last;
            b_b    <= b_new;
            b_s    <= a_first ? '0 : s_old;
            b_td   <= em_exp2_rom(d[F-1:0]);
            b_sh   <= sh_d;
        end
    end

    // ------------------------------------------------------------------ per lane: terms
    logic [SUMW-1:0] term [COLS];
    for (genvar i = 0; i < COLS; i++) begin : g_lane
        // b' - z[j] is in [0, 65535] for every key (b' is at least the block max), so the
        // 16-bit difference read as unsigned is exact.
        logic [15:0]   a;
        logic [15-F:0] an;              // a >> F
        logic [NW-1:0] n_d;
        assign a  = 16'(b_new) - a_score[i*16 +: 16];
        assign an = a[15:F];
        always_comb begin
            if (!a_mask[i] || int'(an) >= FLUSH) n_d = NW'(FLUSH);
            else                                 n_d = NW'(an);
        end

        logic [TW-1:0] t_q;
        logic [NW-1:0] n_q;
        always_ff @(posedge clk) begin
            if (b_free && a_valid) begin
                t_q <= em_exp2_rom(a[F-1:0]);
                n_q <= n_d;
            end
        end

        // Stage B: round_shift(T << G, n) = (v >> n) + bit n-1 of v, from one shift by n-1.
        logic [VW-1:0] v;
        logic [VW-1:0] half;
        assign v    = {t_q, G'(0)};
        assign half = v >> (n_q - NW'(1));
        assign term[i] = n_q == '0 ? SUMW'(v) : SUMW'(half >> 1) + SUMW'(half[0]);
    end

    // ------------------------------------------------------------------ stage B: sums
    logic [SUMW-1:0] sum_d;
    always_comb begin
        sum_d = '0;
        for (int i = 0; i < COLS; i++) sum_d = sum_d + term[i];
    end

    logic [PW-1:0]  c_p;
    logic [SUMW-1:0] c_sum;
    logic [SHW-1:0] c_sh;
    always_ff @(posedge clk) begin
        if (c_free && b_valid) begin
            c_row  <= b_row;
            c_last <= b_last;
            c_b   <= b_b;
            c_sum <= sum_d;
            c_p   <= PW'(b_s) * PW'(b_td);
            c_sh  <= b_sh;
        end
    end

    // ------------------------------------------------------------------ stage C: new sum
    // The shift is at least E > 0, so the rounding bit always exists; the result is at most S
    // (T[f] <= 2**E), so the bits of p_half above SW + 1 are zero.
    /* verilator lint_off UNUSEDSIGNAL */
    logic [PW-1:0] p_half;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [SW-1:0] rescaled;
    assign p_half    = c_p >> (c_sh - SHW'(1));
    assign rescaled  = p_half[SW:1] + SW'(p_half[0]);
    assign c_sum_new = rescaled + SW'(c_sum);

    // ------------------------------------------------------------------ reciprocal
    logic [$clog2(SW+16)-1:0] recip_exp;
    em_recip #(
        .IN_WIDTH (SW),
        .TAG_WIDTH(RW + 16)
    ) u_recip (
        .clk      (clk),
        .rst      (rst),
        .in_valid (c_valid && c_last),
        .in_ready (recip_ready),
        .in_x     (c_sum_new),
        .in_tag   ({c_row, c_b}),
        .out_valid(out_valid),
        .out_ready(out_ready),
        .out_mant (out_mant),
        .out_exp  (recip_exp),
        .out_tag  ({out_row, out_b})
    );
    // 1/s = mant * 2**-(k + 16) * 2**(E + G): S counts units of 2**-(E+G).
    assign out_exp = 16'(recip_exp) - 16'(E + G);
endmodule
