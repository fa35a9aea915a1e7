// em_layernorm: one-pass integer LayerNorm of rows streamed LANES elements per cycle.
//
// Bit for bit edgemoe.hw.numerics.layernorm.layernorm (N = norm_frac_bits), per row of d codes:
//
//   s1 = sum x;  s2 = sum x*x                             exact
//   v = d*s2 - s1*s1 + eps_q;  (r, e) = rsqrt(v)          em_rsqrt
//   c_i = d*x_i - s1;  n_i = round_shift(c_i * r, e - N)
//   acc_i = n_i * gamma_q[i] + beta_q[i];  y_i = saturate(round_shift(acc_i * mult, shift), 8|16)
//
// Ports. Parameters: gamma_q (int16) and beta_q (int32) are written by element index through
// prm_* (one per cycle) and must only be written while `idle` is high (no row in flight reads
// them). Rows: a row of d elements (1 <= d <= D_MAX) is ceil(d/LANES) beats on in_*, element
// j*LANES + i in lane i of beat j; lanes past d in the last beat are ignored. in_d, in_eps,
// in_mult, in_shift and in_out16 are sampled with each row's first beat, so every row may have
// its own. int8 rows arrive sign-extended. The output is ceil(d/LANES) beats of LANES int16
// lanes (an int8 result sign-extended), out_last on a row's last beat; lanes past d in that beat
// carry unspecified values. Preconditions are numerics': eps_q >= 1 and v < 2**62.
//
// Structure. The statistics pass writes each beat into one bank of a two-bank row buffer while
// it sums; on the row's last beat the sums go through two register stages (the d*s2 and s1*s1
// products, then v) into em_rsqrt, whose result (tagged with the bank) marks the bank ready.
// The normalising pass reads a ready bank beat by beat through a 7-stage pipeline (buffer and
// gamma/beta read; c; c*r; n; acc; acc*mult; rounded, saturated y) while the statistics of the
// next row fill the other bank. A bank is released when its last beat enters the pipeline, so
// a row's constants (s1, r, e, d, mult, shift, out16) ride along with its beats.
// Throughput: a row of B = ceil(d/LANES) beats is accepted in B cycles. With two banks, row k+2
// fills the bank row k is read from, so the reader waits for the r of every other row for
// GAP = 3 + (3 + 3 * NEWTON_STEPS) cycles (stages b, f, p and em_rsqrt: 9 cycles for T >= 8):
// in steady state two rows take 2B + GAP cycles, which approaches one row per B cycles as d
// grows (d = 192 on 16 lanes: 12 + 4.5 cycles a row). Latency from a row's last beat in to its
// first beat out: GAP + 7 (the normalising pipeline) if the reader is free.
// Handshake as em_rsqrt: a stage loads when it is empty or its content leaves in the same
// cycle, so bubbles collapse and back-pressure is lossless.
`include "edgemoe_config.svh"
`include "em_tables.svh"

module em_layernorm #(
    parameter int LANES   = `EM_ARRAY_ROWS,
    parameter int X_WIDTH = `EM_ACT_WIDTH,     // input codes, signed (int16; int8 sign-extended)
    parameter int D_MAX   = 1024,              // longest row: the row-buffer size
    parameter int N       = `EM_NORM_FRAC_BITS // fraction bits of the normalised n_i
) (
    input  logic                         clk,
    input  logic                         rst,        // synchronous, active high

    // gamma_q / beta_q by element index; only while idle.
    input  logic                         prm_we,
    input  logic [$clog2(D_MAX)-1:0]     prm_idx,
    input  logic [15:0]                  prm_gamma,  // signed
    input  logic [31:0]                  prm_beta,   // signed
    output logic                         idle,       // no row in flight

    input  logic                         in_valid,
    output logic                         in_ready,
    input  logic [LANES*X_WIDTH-1:0]     in_x,       // signed lanes
    input  logic [$clog2(D_MAX+1)-1:0]   in_d,       // row length, 1..D_MAX (first beat)
    input  logic [63:0]                  in_eps,     // eps_q >= 1 (first beat)
    input  logic [15:0]                  in_mult,    // unsigned (first beat)
    input  logic [5:0]                   in_shift,   // 0..63 (first beat)
    input  logic                         in_out16,   // 1: int16 output, 0: int8 (first beat)

    output logic                         out_valid,
    input  logic                         out_ready,
    output logic [LANES*16-1:0]          out_y,      // signed lanes, saturated to 8 or 16 bits
    output logic                         out_last
);
    localparam int XW  = X_WIDTH;
    localparam int DW  = $clog2(D_MAX + 1);
    localparam int NB  = (D_MAX + LANES - 1) / LANES;     // beats per row buffer bank
    localparam int BW  = NB > 1 ? $clog2(NB) : 1;
    localparam int EW  = $clog2(D_MAX + LANES + 1);       // element index of a beat, + LANES
    // Exact widths for d <= D_MAX (|x| <= 2**(XW-1)): |s1| < 2**(XW+DW-1), s2 < 2**(2XW-2+DW),
    // |c| = |d*x - s1| < 2**(XW+DW), |c*r| < 2**(XW+DW+16).
    localparam int S1W = XW + DW;
    localparam int S2W = 2 * XW - 2 + DW;
    localparam int CW  = XW + DW + 1;
    localparam int PW  = CW + 17;
    // sum c_i**2 = d * (d*s2 - s1**2) < d * v, so |c_i| / sqrt(v) < sqrt(d) < 2**ceil(DW/2) and
    // |n_i| < 2**(N + ceil(DW/2)) * (1 + 2**-15) + 1/2: two spare bits keep n exact.
    localparam int NW  = N + (DW + 1) / 2 + 2;
    // |n * gamma + beta| < 2**(NW+14) + 2**31.
    localparam int AW  = (NW + 14 > 31 ? NW + 14 : 31) + 2;
    localparam int QW  = AW + 17;
    // numerics.recip.MAX_INPUT: v < 2**62.
    localparam int VW  = 62;
    localparam int RNEWTON = `EM_RECIP_NEWTON_STEPS;
    localparam int EXPW = $clog2((VW - 1) / 2 + 17);      // em_rsqrt's out_exp
    localparam int STAGES = 7;

    // ================================================================== statistics pass
    logic [1:0]    full;       // bank holds a row (from its last beat in until it is read out)
    logic [1:0]    rdy;        // bank's r and e are known
    logic          wbank;
    logic [BW-1:0] wbeat;
    logic [EW-1:0] wbase;      // wbeat * LANES, element index of lane 0, counted not multiplied
    logic          accept;
    logic          wfirst;
    logic          wlast;
    logic [DW-1:0] w_d;        // the row's d, from its first beat
    logic [DW-1:0] d_cur;

    assign in_ready = !full[wbank];
    assign accept   = in_valid && in_ready;
    assign wfirst   = wbeat == '0;
    assign d_cur    = wfirst ? in_d : w_d;
    assign wlast    = wbase + EW'(LANES) >= EW'(d_cur);

    always_ff @(posedge clk) begin
        if (rst) begin
            wbank <= 1'b0;
            wbeat <= '0;
            wbase <= '0;
        end else if (accept) begin
            if (wlast) begin
                wbank <= !wbank;
                wbeat <= '0;
                wbase <= '0;
            end else begin
                wbeat <= wbeat + BW'(1);
                wbase <= wbase + EW'(LANES);
            end
        end
    end
    always_ff @(posedge clk) begin
        if (accept && wfirst) w_d <= in_d;
    end

    // Row buffer: two banks of NB beats, written by the statistics pass, read by the
    // normalising pass (never the same bank: a bank is written only while it is not full).
    logic [LANES*XW-1:0] rowbuf [2 * (1 << BW)];
    always_ff @(posedge clk) begin
        if (accept) rowbuf[{wbank, wbeat}] <= in_x;
    end

    // The beat's sums over the lanes inside the row.
    logic signed [S1W-1:0] bsum1;
    logic        [S2W-1:0] bsum2;
    logic signed [XW-1:0]  xi;
    logic signed [2*XW-1:0] xsq;   // x*x <= 2**(2XW-2): non-negative
    always_comb begin
        bsum1 = '0;
        bsum2 = '0;
        for (int i = 0; i < LANES; i++) begin
            xi  = in_x[i*XW +: XW];
            xsq = (2*XW)'(xi) * (2*XW)'(xi);
            if (wbase + EW'(i) < EW'(d_cur)) begin
                bsum1 = bsum1 + S1W'(xi);
                bsum2 = bsum2 + S2W'($unsigned(xsq));
            end
        end
    end

    // Per-bank row constants, written with the row's last beat (and s1 one cycle later, r and e
    // when em_rsqrt answers); a full bank is never rewritten, so they are stable until read out.
    logic [DW-1:0]         bank_d     [2];
    logic [63:0]           bank_eps   [2];
    logic [15:0]           bank_mult  [2];
    logic [5:0]            bank_shift [2];
    logic                  bank_out16 [2];
    logic signed [S1W-1:0] bank_s1    [2];
    logic [15:0]           bank_r     [2];
    logic [EXPW-1:0]       bank_e     [2];
    logic [63:0]           w_eps;
    logic [15:0]           w_mult;
    logic [5:0]            w_shift;
    logic                  w_out16;
    always_ff @(posedge clk) begin
        if (accept && wfirst) begin
            w_eps   <= in_eps;
            w_mult  <= in_mult;
            w_shift <= in_shift;
            w_out16 <= in_out16;
        end
        if (accept && wlast) begin
            bank_d[wbank]     <= d_cur;
            bank_eps[wbank]   <= wfirst ? in_eps : w_eps;
            bank_mult[wbank]  <= wfirst ? in_mult : w_mult;
            bank_shift[wbank] <= wfirst ? in_shift : w_shift;
            bank_out16[wbank] <= wfirst ? in_out16 : w_out16;
        end
    end

    // Stage b: the beat's sums (the lane adders stay out of the accumulator's loop).
    logic                  b_valid;
    logic                  b_first;
    logic                  b_last;
    logic                  b_bank;
    logic signed [S1W-1:0] b_s1;
    logic        [S2W-1:0] b_s2;
    always_ff @(posedge clk) begin
        if (rst) b_valid <= 1'b0;
        else     b_valid <= accept;
        if (accept) begin
            b_first <= wfirst;
            b_last  <= wlast;
            b_bank  <= wbank;
            b_s1    <= bsum1;
            b_s2    <= bsum2;
        end
    end

    // The row's running sums; sum* include the beat in stage b.
    logic signed [S1W-1:0] acc1;
    logic        [S2W-1:0] acc2;
    logic signed [S1W-1:0] sum1;
    logic        [S2W-1:0] sum2;
    assign sum1 = (b_first ? '0 : acc1) + b_s1;
    assign sum2 = (b_first ? '0 : acc2) + b_s2;
    always_ff @(posedge clk) begin
        if (b_valid) begin
            acc1 <= sum1;
            acc2 <= sum2;
        end
    end

    // Stage f: the row's final sums.
    logic                  f_valid;
    logic                  f_bank;
    logic signed [S1W-1:0] f_s1;
    logic        [S2W-1:0] f_s2;
    always_ff @(posedge clk) begin
        if (rst) f_valid <= 1'b0;
        else     f_valid <= b_valid && b_last;
        if (b_valid && b_last) begin
            f_bank          <= b_bank;
            f_s1            <= sum1;
            f_s2            <= sum2;
            bank_s1[b_bank] <= sum1;
        end
    end

    // Stage p: d*s2 and s1*s1 (both below 2**62 by numerics' precondition on v).
    logic                    p_valid;
    logic                    p_bank;
    logic [DW+S2W-1:0]       p_ds2;
    logic signed [2*S1W-1:0] p_ss;
    logic [63:0]             p_eps;
    always_ff @(posedge clk) begin
        if (rst) p_valid <= 1'b0;
        else     p_valid <= f_valid;
        if (f_valid) begin
            p_bank <= f_bank;
            p_ds2  <= (DW+S2W)'(bank_d[f_bank]) * (DW+S2W)'(f_s2);
            p_ss   <= f_s1 * f_s1;
            p_eps  <= bank_eps[f_bank];
        end
    end

    // v = d*s2 - s1*s1 + eps_q: modulo 2**64, exact because v < 2**62.
    /* verilator lint_off UNUSEDSIGNAL */
    logic [63:0] v64;
    logic        rs_in_ready;   // always high: em_rsqrt's consumer never stalls
    /* verilator lint_on UNUSEDSIGNAL */
    assign v64 = 64'(p_ds2) - 64'($unsigned(p_ss)) + p_eps;

    logic            rs_valid;
    logic [15:0]     rs_mant;
    logic [EXPW-1:0] rs_exp;
    logic            rs_bank;
    // Its output goes to the bank's registers, free by construction, so out_ready is tied high
    // and the p, f and b stages never need to stall either.
    em_rsqrt #(
        .IN_WIDTH(VW),
        .TAG_WIDTH(1),
        .NEWTON_STEPS(RNEWTON)
    ) u_rsqrt (
        .clk       (clk),
        .rst       (rst),
        .in_valid  (p_valid),
        .in_ready  (rs_in_ready),
        .in_x      (v64[VW-1:0]),
        .in_tag    (p_bank),
        .out_valid (rs_valid),
        .out_ready (1'b1),
        .out_mant  (rs_mant),
        .out_exp   (rs_exp),
        .out_tag   (rs_bank)
    );
    always_ff @(posedge clk) begin
        if (rs_valid) begin
            bank_r[rs_bank] <= rs_mant;
            bank_e[rs_bank] <= rs_exp;
        end
    end

    // ================================================================== normalising pass
    logic [STAGES-1:0] valid;
    logic [STAGES-1:0] free;
    logic [STAGES-1:0] load;
    logic [STAGES-1:0] feed;
    logic              rbank;
    logic [BW-1:0]     rbeat;
    logic [EW-1:0]     rbase;
    logic              rlast;

    assign feed = {valid[STAGES-2:0], rdy[rbank]};
    for (genvar s = 0; s < STAGES; s++) begin : g_free
        assign free[s] = out_ready || !(&valid[STAGES-1:s]);
    end
    assign load      = feed & free;
    assign out_valid = valid[STAGES-1];
    assign rlast     = rbase + EW'(LANES) >= EW'(bank_d[rbank]);

    // Bank bookkeeping: the writer fills a bank that is not full, em_rsqrt answers for a full
    // one that is not ready, the reader empties a ready one, so no two touch the same bank.
    always_ff @(posedge clk) begin
        if (rst) begin
            valid <= '0;
            full  <= '0;
            rdy   <= '0;
            rbank <= 1'b0;
            rbeat <= '0;
            rbase <= '0;
        end else begin
            valid <= (valid & ~free) | load;
            if (accept && wlast) full[wbank] <= 1'b1;
            if (rs_valid) rdy[rs_bank] <= 1'b1;
            if (load[0]) begin
                if (rlast) begin
                    full[rbank] <= 1'b0;
                    rdy[rbank]  <= 1'b0;
                    rbank       <= !rbank;
                    rbeat       <= '0;
                    rbase       <= '0;
                end else begin
                    rbeat <= rbeat + BW'(1);
                    rbase <= rbase + EW'(LANES);
                end
            end
        end
    end
    assign idle = full == '0 && wfirst && valid == '0;

    // Row constants riding along with each beat: k_<name>[s] is held by stage s, kept only as
    // far as the last stage that uses it.
    logic [DW-1:0]         k_d;
    logic signed [S1W-1:0] k_s1;
    logic [15:0]           k_r     [2];
    logic [5:0]            k_sh    [3];   // e - N, in [2, 38] (e >= 16, N <= 14)
    logic [15:0]           k_mult  [5];
    logic [5:0]            k_shift [6];
    logic                  k_out16 [6];
    logic                  k_last  [STAGES];
    logic [LANES*XW-1:0]   x_word;        // the buffered beat, read once for all lanes

    always_ff @(posedge clk) begin
        if (load[0]) begin
            x_word     <= rowbuf[{rbank, rbeat}];
            k_d        <= bank_d[rbank];
            k_s1       <= bank_s1[rbank];
            k_r[0]     <= bank_r[rbank];
            k_sh[0]    <= 6'(bank_e[rbank]) - 6'(N);
            k_mult[0]  <= bank_mult[rbank];
            k_shift[0] <= bank_shift[rbank];
            k_out16[0] <= bank_out16[rbank];
            k_last[0]  <= rlast;
        end
        for (int s = 1; s < STAGES; s++) begin
            if (load[s]) begin
                if (s < 2) k_r[s]     <= k_r[s-1];
                if (s < 3) k_sh[s]    <= k_sh[s-1];
                if (s < 5) k_mult[s]  <= k_mult[s-1];
                if (s < 6) k_shift[s] <= k_shift[s-1];
                if (s < 6) k_out16[s] <= k_out16[s-1];
                k_last[s] <= k_last[s-1];
            end
        end
    end
    assign out_last = k_last[STAGES-1];

    // Saturation rails of the output format.
    logic signed [QW-1:0] y_max;
    logic signed [QW-1:0] y_min;
    assign y_max = k_out16[STAGES-2] ? QW'(32767) : QW'(127);
    assign y_min = -y_max - QW'(1);

    for (genvar i = 0; i < LANES; i++) begin : g_lane
        logic signed [15:0] gmem [1 << BW];
        logic signed [31:0] bmem [1 << BW];
        // gamma/beta element idx lives in lane idx % LANES of beat idx / LANES.
        always_ff @(posedge clk) begin
            if (prm_we && 32'(prm_idx) % LANES == i) begin
                gmem[BW'(32'(prm_idx) / LANES)] <= prm_gamma;
                bmem[BW'(32'(prm_idx) / LANES)] <= prm_beta;
            end
        end

        // Stage 0: the lane's gamma and beta (its code is in x_word).
        logic signed [XW-1:0] x0;
        logic signed [15:0]   g0, g1, g2, g3;
        logic signed [31:0]   b0, b1, b2, b3;
        assign x0 = x_word[i*XW +: XW];
        always_ff @(posedge clk) begin
            if (load[0]) begin
                g0 <= gmem[rbeat];
                b0 <= bmem[rbeat];
            end
        end

        // Stage 1: c = d*x - s1.
        logic signed [CW-1:0] c1;
        always_ff @(posedge clk) begin
            if (load[1]) begin
                c1 <= CW'($signed({1'b0, k_d})) * CW'(x0) - CW'(k_s1);
                g1 <= g0;
                b1 <= b0;
            end
        end

        // Stage 2: c * r (r unsigned).
        logic signed [PW-1:0] p2;
        always_ff @(posedge clk) begin
            if (load[2]) begin
                p2 <= PW'(c1) * PW'($signed({1'b0, k_r[1]}));
                g2 <= g1;
                b2 <= b1;
            end
        end

        // Stage 3: n = round_shift(c*r, e - N); e - N >= 2, so always a rounding shift:
        // floor((p + 2**(s-1)) / 2**s) = (p >>> s) + bit s-1 of p.
        /* verilator lint_off UNUSEDSIGNAL */
        logic signed [PW-1:0] nh;
        logic signed [PW-1:0] nr;
        /* verilator lint_on UNUSEDSIGNAL */
        logic signed [NW-1:0] n3;
        assign nh = p2 >>> (k_sh[2] - 6'd1);
        assign nr = (nh >>> 1) + $signed(PW'(nh[0]));
        always_ff @(posedge clk) begin
            if (load[3]) begin
                n3 <= nr[NW-1:0];
                g3 <= g2;
                b3 <= b2;
            end
        end

        // Stage 4: acc = n * gamma + beta.
        logic signed [AW-1:0] a4;
        always_ff @(posedge clk) begin
            if (load[4]) a4 <= AW'(n3) * AW'(g3) + AW'(b3);
        end

        // Stage 5: acc * mult (mult unsigned).
        logic signed [QW-1:0] q5;
        always_ff @(posedge clk) begin
            if (load[5]) q5 <= QW'(a4) * QW'($signed({1'b0, k_mult[4]}));
        end

        // Stage 6: requantize's rounding shift (as em_requant) and saturation.
        logic signed [QW-1:0] qh;
        logic signed [QW-1:0] qr;
        logic        [15:0]   y_d;
        logic        [15:0]   y6;
        assign qh = q5 >>> (k_shift[5] - 6'd1);
        always_comb begin
            if (k_shift[5] == 6'd0) qr = q5;
            else                    qr = (qh >>> 1) + $signed(QW'(qh[0]));
            if (qr > y_max)         y_d = y_max[15:0];
            else if (qr < y_min)    y_d = y_min[15:0];
            else                    y_d = qr[15:0];
        end
        always_ff @(posedge clk) begin
            if (load[6]) y6 <= y_d;
        end
        assign out_y[i*16 +: 16] = y6;
    end
endmodule
