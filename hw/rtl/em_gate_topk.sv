// em_gate_topk: GATE_TOPK's per-token part, the softmax over a token's experts and its top k.
//
// Bit for bit edgemoe.hw.numerics.gate.gate_topk(z, k, cfg) for one row z of e int16 base-2
// logits (Q(F), lane j at bits [16j +: 16], lanes j >= e ignored). With E = exp_frac_bits,
// G = SUM_GUARD_BITS, p = 15 (scores in Q15), T the exp2 ROM em_exp2_rom and (n, f) =
// (a >> F, a & (2**F - 1)), this is online_softmax_stats(z, cfg, block=e) followed by
// softmax_probs(z, stats, cfg, prob_bits=16), as em_softmax_stats and em_softmax_prob compute them:
//
//   rank[j] = #{i < e : z[i] > z[j] or (z[i] = z[j] and i < j)}   stable sort on -z
//   b       = z[j] of rank 0                                      the exact max
//   S       = sum over j < e of round_shift(T[f_j] << G, n_j)     (n_j, f_j) of b - z[j]
//   (mant, x) = em_recip(S)                                       1/S = mant * 2**-x
//   P[j]    = min(round_shift(T[f_j] * mant, clamp(n_j + x - G - p, 0, 63)), 2**p - 1)
//
// The shift is softmax_probs' E + n + exp - p with pack_stats' exp = x - E - G. Output slot r < k
// holds the expert of rank r and its P (experts in order of decreasing score); slots r >= k are 0.
// One block, so no rescale of S: the rescale by b' = b in em_softmax_stats is the identity.
//
// The unit holds one token at a time: k + 5 cycles plus em_recip's 3 + 2 * NEWTON_STEPS stages
// (k + 10 for recip_table_bits >= 8). The gate sees a few hundred tokens per MoE layer against
// millions of cycles of expert MLPs, so one shared exp2 product and one em_recip cost less than
// a pipeline that would sit idle.
//   IDLE   in_ready; the token is captured
//   RANK   the rank of every expert (E_MAX**2 comparators); the slot experts; b
//   SUM    every lane's term and their sum S (a single block: an exact integer sum)
//   RECIP  S is offered to em_recip;  WAIT  its result is captured
//   PROB   one slot per cycle: the probability of slot r's expert
//   OUT    out_valid until out_ready
// e must be in [1, E_MAX] and k in [1, e] (the sequencer checks GATE_TOPK's fields).
`include "edgemoe_config.svh"
`include "em_tables.svh"

module em_gate_topk #(
    // Experts per token the unit takes in one word (M3ViT: 16).
    parameter int E_MAX = 16
) (
    input  logic                      clk,
    input  logic                      rst,        // synchronous, active high

    input  logic                      in_valid,
    output logic                      in_ready,
    input  logic [15:0]               in_token,   // rides along to the route table
    input  logic [E_MAX*16-1:0]       in_logit,   // signed, Q(F)
    input  logic [$clog2(E_MAX+1)-1:0] in_e,      // experts, 1..E_MAX
    input  logic [$clog2(E_MAX+1)-1:0] in_k,      // experts kept, 1..e

    output logic                      out_valid,
    input  logic                      out_ready,
    output logic [15:0]               out_token,
    output logic [$clog2(E_MAX+1)-1:0] out_k,
    output logic [E_MAX*$clog2(E_MAX > 1 ? E_MAX : 2)-1:0] out_expert,  // slot r: rank r's expert
    output logic [E_MAX*16-1:0]       out_score   // slot r: its probability, Q15 (uint16)
);
    localparam int CW = $bits(in_e);
    localparam int XW = $clog2(E_MAX > 1 ? E_MAX : 2);
    localparam int F  = `EM_SCORE_FRAC_BITS;
    localparam int G  = `EM_SUM_GUARD_BITS;
    localparam int TW = `EM_EXP2_ROM_DATA_WIDTH;    // T[f] <= 2**E: E cancels out of every shift
    localparam int P  = `EM_GATE_SCORE_BITS - 1;
    localparam int VW = TW + G;                      // T[f] << G, a term before its shift
    localparam int FLUSH = VW + 1;                   // a term shifted this far is 0
    localparam int NW = $clog2(FLUSH + 1);
    // e terms of at most 2**(E+G) each.
    localparam int SW = VW + $clog2(E_MAX + 1);
    localparam int RXW = $clog2(SW + 16);            // em_recip's exponent x = msb(S) + 16
    localparam int QW = TW + 16;                     // T[f] * mant
    localparam int SHIFT_MAX = `EM_SHIFT_CLAMP;
    localparam logic [QW-1:0] PMAX = QW'((1 << P) - 1);

    typedef enum logic [2:0] {IDLE, RANK, SUM, RECIP, WAIT, PROB, OUT} state_t;
    state_t state;

    // ------------------------------------------------------------------ token registers
    logic [15:0]      token_q;
    logic [CW-1:0]    e_q, k_q;
    logic signed [15:0] z_q [E_MAX];
    logic signed [15:0] b_q;
    logic [SW-1:0]    s_q;
    logic [15:0]      mant_q;
    logic [RXW-1:0]   rx_q;
    logic [XW-1:0]    slot_x [E_MAX];   // expert of rank r
    logic [15:0]      slot_p [E_MAX];   // its probability
    logic [CW-1:0]    r_q;              // PROB's slot

    logic accept;
    assign in_ready = state == IDLE;
    assign accept   = in_valid && in_ready;

    // ------------------------------------------------------------------ RANK
    // Expert i outranks j when its logit is larger, or equal with a lower index: numpy's stable
    // argsort of -z. Every valid j gets a distinct rank in [0, e).
    logic [CW-1:0]      rank [E_MAX];
    logic [XW-1:0]      slot_x_d [E_MAX];
    logic signed [15:0] b_d;
    always_comb begin
        for (int j = 0; j < E_MAX; j++) begin
            rank[j] = '0;
            for (int i = 0; i < E_MAX; i++) begin
                if (i != j && CW'(i) < e_q &&
                    (i < j ? z_q[i] >= z_q[j] : z_q[i] > z_q[j])) rank[j] = rank[j] + CW'(1);
            end
        end
        // The one valid expert of each rank r < k (an OR over a one-hot choice).
        for (int r = 0; r < E_MAX; r++) begin
            slot_x_d[r] = '0;
            for (int j = 0; j < E_MAX; j++) begin
                if (CW'(j) < e_q && CW'(r) < k_q && rank[j] == CW'(r)) slot_x_d[r] |= XW'(j);
            end
        end
        // The max is the logit of rank 0 (k >= 1, so slot 0 always holds it).
        b_d = '0;
        for (int j = 0; j < E_MAX; j++) begin
            if (CW'(j) < e_q && rank[j] == '0) b_d |= z_q[j];
        end
    end

    // ------------------------------------------------------------------ SUM
    // b - z[j] is in [0, 65535] for every valid j (b is the max), so the 16-bit difference read
    // as unsigned is exact. round_shift(T << G, n) = (v >> n) + bit n-1 of v, from one shift by
    // n-1; n is clamped where the term is 0 anyway.
    logic [SW-1:0] term [E_MAX];
    for (genvar j = 0; j < E_MAX; j++) begin : g_term
        logic [15:0]   a;
        logic [NW-1:0] n;
        logic [VW-1:0] v;
        logic [VW-1:0] half;
        assign a    = 16'(b_q - z_q[j]);
        assign n    = int'(a[15:F]) >= FLUSH ? NW'(FLUSH) : NW'(a[15:F]);
        assign v    = {em_exp2_rom(a[F-1:0]), G'(0)};
        assign half = v >> (n - NW'(1));
        assign term[j] = CW'(j) >= e_q ? '0 :
                         n == '0 ? SW'(v) : SW'(half >> 1) + SW'(half[0]);
    end

    logic [SW-1:0] sum_d;
    always_comb begin
        sum_d = '0;
        for (int j = 0; j < E_MAX; j++) sum_d = sum_d + term[j];
    end

    // ------------------------------------------------------------------ reciprocal
    logic            recip_in_ready;
    logic            recip_out_valid;
    logic [15:0]     recip_mant;
    logic [RXW-1:0]  recip_exp;
    em_recip #(
        .IN_WIDTH (SW),
        .TAG_WIDTH(1)
    ) u_recip (
        .clk      (clk),
        .rst      (rst),
        .in_valid (state == RECIP),
        .in_ready (recip_in_ready),
        .in_x     (s_q),
        .in_tag   (1'b0),
        .out_valid(recip_out_valid),
        .out_ready(state == WAIT),
        .out_mant (recip_mant),
        .out_exp  (recip_exp),
        /* verilator lint_off PINCONNECTEMPTY */
        .out_tag  ()
        /* verilator lint_on PINCONNECTEMPTY */
    );

    // ------------------------------------------------------------------ PROB
    // Slot r's expert: a = b - z (>= 0), then em_softmax_prob's product, rounding shift and clamp.
    logic signed [15:0] zr;
    logic [15:0]        ar;
    logic [15-F:0]      nr;
    logic signed [17:0] sh;
    logic [5:0]         sh_c;
    logic [QW-1:0]      q;
    logic [QW-1:0]      half;
    logic [QW-1:0]      rounded;
    logic [15:0]        p_d;
    assign zr   = z_q[slot_x[r_q[XW-1:0]]];
    assign ar   = 16'(b_q - zr);
    assign nr   = ar[15:F];
    assign sh   = 18'($signed({1'b0, nr})) + 18'(rx_q) - 18'(G + P);
    assign sh_c = sh < 0 ? 6'd0 : sh > 18'(SHIFT_MAX) ? 6'(SHIFT_MAX) : sh[5:0];
    assign q    = QW'(em_exp2_rom(ar[F-1:0])) * QW'(mant_q);
    // Shifts past the product's width give 0, as numerics' clamp of 63 does for q < 2**62.
    assign half    = q >> (sh_c - 6'd1);
    assign rounded = sh_c == 6'd0 ? q : (half >> 1) + QW'(half[0]);
    assign p_d     = rounded > PMAX ? 16'(PMAX) : 16'(rounded);

    // ------------------------------------------------------------------ control and datapath
    always_ff @(posedge clk) begin
        if (rst) begin
            state <= IDLE;
        end else begin
            case (state)
                IDLE:  if (accept) state <= RANK;
                RANK:  state <= SUM;
                SUM:   state <= RECIP;
                RECIP: if (recip_in_ready) state <= WAIT;
                WAIT:  if (recip_out_valid) state <= PROB;
                PROB:  if (r_q == k_q - CW'(1)) state <= OUT;
                OUT:   if (out_ready) state <= IDLE;
                default: state <= IDLE;
            endcase
        end
    end

    // Data registers are qualified by the state and need no reset.
    always_ff @(posedge clk) begin
        if (accept) begin
            token_q <= in_token;
            e_q     <= in_e;
            k_q     <= in_k;
            for (int j = 0; j < E_MAX; j++) begin
                z_q[j]    <= $signed(in_logit[j*16 +: 16]);
                slot_p[j] <= '0;
            end
        end
        if (state == RANK) begin
            slot_x <= slot_x_d;
            b_q    <= b_d;
        end
        if (state == SUM) s_q <= sum_d;
        if (state == WAIT) begin
            mant_q <= recip_mant;
            rx_q   <= recip_exp;
            r_q    <= '0;
        end
        if (state == PROB) begin
            slot_p[r_q[XW-1:0]] <= p_d;
            r_q <= r_q + CW'(1);
        end
    end

    assign out_valid = state == OUT;
    assign out_token = token_q;
    assign out_k     = k_q;
    for (genvar r = 0; r < E_MAX; r++) begin : g_out
        assign out_expert[r*XW +: XW] = slot_x[r];
        assign out_score[r*16 +: 16]  = slot_p[r];
    end
endmodule
