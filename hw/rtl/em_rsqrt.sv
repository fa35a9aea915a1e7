// em_rsqrt: reciprocal square root of a positive integer in floating form,
// 1/sqrt(x) ~= mant * 2**-exp.
//
// Bit for bit edgemoe.hw.numerics.recip.rsqrt (M = WORK_BITS = 24, T = recip_table_bits,
// Rs = the seed ROM em_rsqrt_seed_rom generated from numerics.recip.rsqrt_seed_table):
//
//   k = msb_index(x);  p = k & 1                        leading-one position and its parity
//   u = x normalised to [2**M, 2**(M+1));  w = u << p   right shifts truncate; w in [1, 4)
//   y = Rs[{p, (u >> (M - T + 1)) & (2**(T-1) - 1)}] << (M - 16)      seed in Q(M)
//   NEWTON_STEPS times:  y2 = (y * y) >> M;  t = (w * y2) >> M;  y = (y * ((3 << M) - t)) >> (M + 1)
//   mant = clamp(round_shift(y, M - 16), 2**15, 2**16 - 1);  exp = (k - p) / 2 + 16
//
// x must be at least 1 (x = 0 gives an unspecified result); IN_WIDTH up to 62, numerics' range.
//
// Operand widths: run over every u in [2**M, 2**(M+1)), both parities, every legal T = 4..10,
// the iterates y and y2 stay below 2**M, t below 2**(M+1) and the Newton factor (3 << M) - t
// in (2**(M+1) - 2**M/4, 3 * 2**M), so y and y2 are held in M bits, t in M + 1, w and the factor
// in M + 2; the products are exact at M x M, (M+2) x M and M x (M+2) bits.
//
// Pipeline (3 + 3 * NEWTON_STEPS register stages, one operand per cycle), the structure of
// em_recip: 0. leading-one detector and normalising shift; 1. seed ROM; per Newton step y2, t,
// then the new y; last: rounded, clamped mantissa. A stage loads when it is empty or its content
// leaves in the same cycle, so bubbles collapse and back-pressure is lossless. in_tag rides
// along unchanged (em_layernorm sends the row-buffer bank through it).
`include "edgemoe_config.svh"
`include "em_tables.svh"

module em_rsqrt #(
    parameter int IN_WIDTH  = `EM_RECIP_INPUT_BITS,
    parameter int TAG_WIDTH = 1,
    // numerics.recip.newton_steps: one step reaches 16 bits for T >= 8, two do for T >= 4.
    parameter int NEWTON_STEPS = `EM_RECIP_NEWTON_STEPS
) (
    input  logic                  clk,
    input  logic                  rst,        // synchronous, active high

    input  logic                  in_valid,
    output logic                  in_ready,
    input  logic [IN_WIDTH-1:0]   in_x,       // unsigned, >= 1
    input  logic [TAG_WIDTH-1:0]  in_tag,

    output logic                  out_valid,
    input  logic                  out_ready,
    output logic [15:0]           out_mant,   // in [2**15, 2**16)
    output logic [$clog2((IN_WIDTH-1)/2+17)-1:0] out_exp,  // (k - p)/2 + 16, unsigned
    output logic [TAG_WIDTH-1:0]  out_tag
);
    // numerics.recip.WORK_BITS and MANT_BITS.
    localparam int M  = `EM_RECIP_WORK_BITS;
    localparam int MB = `EM_RECIP_MANT_BITS;
    localparam int T  = `EM_RSQRT_SEED_ROM_ADDR_WIDTH;
    localparam int UW = M + 1;
    localparam int WW = M + 2;
    localparam int KW = $clog2(IN_WIDTH);      // k <= IN_WIDTH - 1
    localparam int EXP_WIDTH = $bits(out_exp);
    localparam int STAGES = 3 + 3 * NEWTON_STEPS;

    // ------------------------------------------------------------------ pipeline control
    logic [STAGES-1:0] load;    // stage s takes its input this cycle
    em_pipe_ctrl #(.STAGES(STAGES)) u_ctrl (
        .clk, .rst, .in_valid, .in_ready, .out_valid, .out_ready, .load
    );

    // ------------------------------------------------------------------ stage 0: normalise
    logic [KW-1:0]       k_d;
    logic [KW-1:0]       lz;        // leading zeros, IN_WIDTH - 1 - k
    logic [UW-1:0]       u_d;
    always_comb begin
        k_d = '0;
        for (int i = 1; i < IN_WIDTH; i++) begin
            if (in_x[i]) k_d = KW'(i);
        end
    end
    assign lz = KW'(IN_WIDTH - 1) - k_d;
    // Moving the leading one to the top of {x, UW zeros} and keeping the top UW bits is both
    // cases of numerics' normalise (a truncating right shift for k >= M, a left shift below).
    /* verilator lint_off UNUSEDSIGNAL */
    logic [IN_WIDTH+UW-1:0] x_norm;
    /* verilator lint_on UNUSEDSIGNAL */
    assign x_norm = {in_x, UW'(0)} << lz;
    assign u_d    = x_norm[IN_WIDTH+UW-1 -: UW];

    logic [KW-1:0]        k_q0;
    logic [UW-1:0]        u_q0;
    logic [TAG_WIDTH-1:0] tag_q0;
    always_ff @(posedge clk) begin
        if (load[0]) begin
            k_q0   <= k_d;
            u_q0   <= u_d;
            tag_q0 <= in_tag;
        end
    end

    // ------------------------------------------------------------------ stage 1: seed
    // At each Newton step boundary j (0 = after the seed): the operand's k, w, y and tag.
    logic [KW-1:0]        k_c   [NEWTON_STEPS+1];
    logic [WW-1:0]        w_c   [NEWTON_STEPS];
    logic [M-1:0]         y_c   [NEWTON_STEPS+1];
    logic [TAG_WIDTH-1:0] tag_c [NEWTON_STEPS+1];
    // u[M-1 -: T-1] is (u >> (M - T + 1)) & (2**(T-1) - 1), the top fraction bits below the
    // integer bit; the parity selects the half of the ROM for w in [1, 2) or [2, 4).
    always_ff @(posedge clk) begin
        if (load[1]) begin
            k_c[0]   <= k_q0;
            w_c[0]   <= WW'(u_q0) << k_q0[0];
            y_c[0]   <= M'(em_rsqrt_seed_rom({k_q0[0], u_q0[M-1 -: T-1]})) << (M - MB);
            tag_c[0] <= tag_q0;
        end
    end

    // ------------------------------------------------------------------ Newton steps
    for (genvar j = 0; j < NEWTON_STEPS; j++) begin : g_newton
        localparam int SA = 2 + 3 * j;   // the stage holding y2
        localparam int SB = SA + 1;      // the stage holding t
        localparam int SC = SA + 2;      // the stage holding the new y

        // The low bits of each product are what the truncating shifts drop, and the top bits
        // are zero by the bounds above.
        /* verilator lint_off UNUSEDSIGNAL */
        logic [2*M-1:0]       yy;
        logic [WW+M-1:0]      wy2;
        logic [M+WW-1:0]      ny;
        /* verilator lint_on UNUSEDSIGNAL */
        logic [M-1:0]         y2_q;
        logic [UW-1:0]        t_q;
        logic [KW-1:0]        k_qa, k_qb;
        logic [WW-1:0]        w_qa;
        logic [M-1:0]         y_qa, y_qb;
        logic [TAG_WIDTH-1:0] tag_qa, tag_qb;

        assign yy = (2*M)'(y_c[j]) * (2*M)'(y_c[j]);
        always_ff @(posedge clk) begin
            if (load[SA]) begin
                y2_q   <= yy[M +: M];
                k_qa   <= k_c[j];
                w_qa   <= w_c[j];
                y_qa   <= y_c[j];
                tag_qa <= tag_c[j];
            end
        end

        assign wy2 = (WW+M)'(w_qa) * (WW+M)'(y2_q);
        always_ff @(posedge clk) begin
            if (load[SB]) begin
                t_q    <= wy2[M +: UW];
                k_qb   <= k_qa;
                y_qb   <= y_qa;
                tag_qb <= tag_qa;
            end
        end

        // (3 << M) - t stays in (0, 3 * 2**M) because t is in (0, 2**(M+1)).
        logic [WW-1:0] corr;
        assign corr = WW'(3) << M;
        assign ny   = (M+WW)'(y_qb) * (M+WW)'(corr - WW'(t_q));
        always_ff @(posedge clk) begin
            if (load[SC]) begin
                k_c[j+1]   <= k_qb;
                y_c[j+1]   <= ny[M+1 +: M];
                tag_c[j+1] <= tag_qb;
            end
        end

        // The next step multiplies by w again.
        if (j + 1 < NEWTON_STEPS) begin : g_keep_w
            logic [WW-1:0] w_qb;
            always_ff @(posedge clk) begin
                if (load[SB]) w_qb <= w_qa;
                if (load[SC]) w_c[j+1] <= w_qb;
            end
        end
    end

    // ------------------------------------------------------------------ last stage: mantissa
    localparam int RS = M - MB;                 // round_shift(y, M - 16)
    localparam logic [M:0] MANT_MIN = (M+1)'(1) << (MB - 1);
    localparam logic [M:0] MANT_MAX = ((M+1)'(1) << MB) - (M+1)'(1);
    logic [M:0]    rounded;                     // y < 2**M rounds to at most 2**16
    logic [MB-1:0] mant_d;
    logic [KW-1:0] k_last;
    assign k_last  = k_c[NEWTON_STEPS];
    assign rounded = ((M+1)'(y_c[NEWTON_STEPS]) + (M+1)'(1 << (RS - 1))) >> RS;
    always_comb begin
        if (rounded > MANT_MAX)      mant_d = MANT_MAX[MB-1:0];
        else if (rounded < MANT_MIN) mant_d = MANT_MIN[MB-1:0];
        else                         mant_d = rounded[MB-1:0];
    end

    always_ff @(posedge clk) begin
        if (load[STAGES-1]) begin
            out_mant <= mant_d;
            // (k - p) / 2 is k >> 1.
            out_exp  <= EXP_WIDTH'(k_last >> 1) + EXP_WIDTH'(MB);
            out_tag  <= tag_c[NEWTON_STEPS];
        end
    end
endmodule
