// em_recip: reciprocal of a positive integer in floating form, 1/x ~= mant * 2**-exp.
//
// Bit for bit edgemoe.hw.numerics.recip.reciprocal (M = WORK_BITS = 24, T = recip_table_bits,
// R = the seed ROM em_recip_seed_rom generated from numerics.recip.recip_seed_table):
//
//   k = msb_index(x)                                    leading-one position
//   u = x normalised to [2**M, 2**(M+1))                right shifts truncate
//   y = R[(u >> (M - T)) & (2**T - 1)] << (M - 16)       seed in Q(M)
//   NEWTON_STEPS times:  t = (u * y) >> M;  y = (y * ((2 << M) - t)) >> M
//   mant = clamp(round_shift(y, M - 16), 2**15, 2**16 - 1);  exp = k + 16
//
// x must be at least 1 (x = 0 gives an unspecified result). IN_WIDTH may be anything up to 62,
// the input range numerics allows; the online softmax instantiates it at the width of its
// running sum.
//
// Operand widths: u has M + 1 bits. Run over every u in [2**M, 2**(M+1)) for every legal
// T = 4..10, the iterates y stay below 2**M and t below 2**(M+1), so y is held in M bits, the
// Newton factor (2 << M) - t in M + 1 bits, and both products are (M+1) x M bits, exactly.
//
// Pipeline (3 + 2 * NEWTON_STEPS register stages, one operand per cycle):
//   0. leading-one detector and normalising shift;  1. seed ROM (registered at its output);
//   per Newton step: the product u * y, then the new y;  last: rounded, clamped mantissa.
// Handshake as em_gelu: a stage loads when it is empty or its content leaves in the same cycle,
// so bubbles collapse and back-pressure is lossless; in_ready depends combinationally on
// out_ready through one gate per stage. in_tag rides along unchanged (the softmax statistics
// unit sends its row index and running max through it).
`include "edgemoe_config.svh"
`include "em_tables.svh"

module em_recip #(
    parameter int IN_WIDTH  = `EM_RECIP_INPUT_BITS,
    parameter int TAG_WIDTH = 1,
    // numerics.recip.newton_steps: a seed from T index bits is good to about 2**-(T+1), and each
    // step squares the error, so one step reaches 16 bits for T >= 8 and two do for T >= 4.
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
    output logic [$clog2(IN_WIDTH+16)-1:0] out_exp,  // k + 16 <= IN_WIDTH + 15, unsigned
    output logic [TAG_WIDTH-1:0]  out_tag
);
    // numerics.recip.WORK_BITS and MANT_BITS.
    localparam int M  = `EM_RECIP_WORK_BITS;
    localparam int MB = `EM_RECIP_MANT_BITS;
    localparam int T  = `EM_RECIP_SEED_ROM_ADDR_WIDTH;
    localparam int UW = M + 1;
    localparam int KW = $clog2(IN_WIDTH);      // k <= IN_WIDTH - 1
    localparam int EXP_WIDTH = $bits(out_exp);
    localparam int STAGES = 3 + 2 * NEWTON_STEPS;

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
    // cases of numerics' normalise: x >> (k - M) (truncating) for k >= M, x << (M - k) below.
    // The bits below the top UW are what numerics' right shift truncates.
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
    // At each Newton step boundary j (0 = after the seed) the operand's k, y and tag, and u
    // while a step still needs it.
    logic [KW-1:0]        k_c   [NEWTON_STEPS+1];
    logic [UW-1:0]        u_c   [NEWTON_STEPS];
    logic [M-1:0]         y_c   [NEWTON_STEPS+1];
    logic [TAG_WIDTH-1:0] tag_c [NEWTON_STEPS+1];
    // u[M-1 -: T] is (u >> (M - T)) & (2**T - 1): the top fraction bits (the integer bit is 1).
    always_ff @(posedge clk) begin
        if (load[1]) begin
            k_c[0]   <= k_q0;
            u_c[0]   <= u_q0;
            y_c[0]   <= M'(em_recip_seed_rom(u_q0[M-1 -: T])) << (M - MB);
            tag_c[0] <= tag_q0;
        end
    end

    // ------------------------------------------------------------------ Newton steps
    for (genvar j = 0; j < NEWTON_STEPS; j++) begin : g_newton
        localparam int SA = 2 + 2 * j;   // the stage holding t
        localparam int SB = SA + 1;      // the stage holding the new y

        // The low M bits are what `>> M` truncates (in both products; the new y's top bit is
        // zero because y < 2**M).
        /* verilator lint_off UNUSEDSIGNAL */
        logic [UW+M-1:0]      uy;
        logic [UW+M-1:0]      ny;
        /* verilator lint_on UNUSEDSIGNAL */
        logic [UW-1:0]        t_q;
        logic [KW-1:0]        k_qa;
        logic [M-1:0]         y_qa;
        logic [TAG_WIDTH-1:0] tag_qa;
        assign uy = (UW+M)'(u_c[j]) * (UW+M)'(y_c[j]);
        always_ff @(posedge clk) begin
            if (load[SA]) begin
                t_q    <= uy[M +: UW];
                k_qa   <= k_c[j];
                y_qa   <= y_c[j];
                tag_qa <= tag_c[j];
            end
        end

        // (2 << M) - t stays in (0, 2**(M+1)) because t is in (2**(M-1), 2**(M+1)).
        logic [UW-1:0]   corr;
        assign corr = UW'((UW+1)'(2) << M) - t_q;
        assign ny   = (UW+M)'(y_qa) * (UW+M)'(corr);
        always_ff @(posedge clk) begin
            if (load[SB]) begin
                k_c[j+1]   <= k_qa;
                y_c[j+1]   <= ny[M +: M];
                tag_c[j+1] <= tag_qa;
            end
        end

        // The next step multiplies by u again.
        if (j + 1 < NEWTON_STEPS) begin : g_keep_u
            logic [UW-1:0] u_qa;
            always_ff @(posedge clk) begin
                if (load[SA]) u_qa <= u_c[j];
                if (load[SB]) u_c[j+1] <= u_qa;
            end
        end
    end

    // ------------------------------------------------------------------ last stage: mantissa
    localparam int RS = M - MB;                 // round_shift(y, M - 16)
    localparam logic [M:0] MANT_MIN = (M+1)'(1) << (MB - 1);
    localparam logic [M:0] MANT_MAX = ((M+1)'(1) << MB) - (M+1)'(1);
    logic [M:0]    rounded;                     // y < 2**M rounds to at most 2**16
    logic [MB-1:0] mant_d;
    assign rounded = ((M+1)'(y_c[NEWTON_STEPS]) + (M+1)'(1 << (RS - 1))) >> RS;
    always_comb begin
        if (rounded > MANT_MAX)      mant_d = MANT_MAX[MB-1:0];
        else if (rounded < MANT_MIN) mant_d = MANT_MIN[MB-1:0];
        else                         mant_d = rounded[MB-1:0];
    end

    always_ff @(posedge clk) begin
        if (load[STAGES-1]) begin
            out_mant <= mant_d;
            out_exp  <= EXP_WIDTH'(k_c[NEWTON_STEPS]) + EXP_WIDTH'(MB);
            out_tag  <= tag_c[NEWTON_STEPS];
        end
    end
endmodule
