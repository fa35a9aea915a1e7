// em_route_table: GATE_TOPK's route-list builder, the writes of the route table as tokens arrive.
//
// Consumes em_gate_topk's per-token results in token order and emits (byte offset from
// route_addr, 32-bit word) writes whose union is exactly what the golden model writes of
// edgemoe.hw.layouts.pack_route_table(*numerics.gate.route_table(experts, scores, e, capacity)):
//
//   for each token, slot r < k, expert x = in_expert[r]:
//     offset = COUNT_BYTES * e + ENTRY_BYTES * (capacity * x + count[x]),
//     word   = {score, token}  (uint16 token in bytes 0-1, uint16 score in bytes 2-3);
//     count[x] += 1
//   after the token with in_last: for x < e, offset = COUNT_BYTES * x, word = count[x]
//
// so expert x's list fills in increasing token order (numerics' stable sort of the row-major
// choices) and the counts follow once they are final. Unused list entries are not written,
// as the golden model leaves them. The counts are cleared as they are written out, ready for
// the next operation. A list never overflows when capacity is at least the number of tokens
// (GATE_TOPK's capacity is its m, and a token chooses an expert at most once).
//
// One write per cycle: a token takes k cycles, the counts e cycles. The write leaves through
// one output register (loaded when empty or when its word is taken, so back-pressure is
// lossless); in_ready is high only between tokens. cfg_e and cfg_capacity are the operation's
// fields and must hold from its first token until its last count is written.
`include "edgemoe_config.svh"
`include "em_tables.svh"

module em_route_table #(
    // Experts per token word, as em_gate_topk's E_MAX.
    parameter int E_MAX = 16,
    // hw.layouts.ROUTE_COUNT_BYTES and ROUTE_ENTRY_BYTES: one uint32 count per expert, one
    // (uint16 token, uint16 score) entry per routed token.
    parameter int COUNT_BYTES = `EM_ROUTE_COUNT_BYTES,
    parameter int ENTRY_BYTES = `EM_ROUTE_ENTRY_BYTES
) (
    input  logic                      clk,
    input  logic                      rst,        // synchronous, active high

    input  logic [$clog2(E_MAX+1)-1:0] cfg_e,     // experts, 1..E_MAX
    input  logic [15:0]               cfg_capacity,  // entries per list (GATE_TOPK's m)

    input  logic                      in_valid,
    output logic                      in_ready,
    input  logic [15:0]               in_token,
    input  logic [$clog2(E_MAX+1)-1:0] in_k,      // 1..e
    input  logic [E_MAX*$clog2(E_MAX > 1 ? E_MAX : 2)-1:0] in_expert,  // slot r at [r*XW +: XW]
    input  logic [E_MAX*16-1:0]       in_score,   // slot r: uint16, Q15
    input  logic                      in_last,    // the operation's last token

    output logic                      out_valid,
    input  logic                      out_ready,
    output logic [`EM_AXI_ADDR_WIDTH-1:0] out_offset,  // bytes from route_addr
    output logic [31:0]               out_data
);
    localparam int CW = $bits(cfg_e);
    localparam int XW = $clog2(E_MAX > 1 ? E_MAX : 2);
    localparam int AW = `EM_AXI_ADDR_WIDTH;

    typedef enum logic [1:0] {IDLE, ENTRIES, COUNTS} state_t;
    state_t state;

    logic [15:0]          token_q;
    logic [CW-1:0]        k_q;
    logic [XW-1:0]        expert_q [E_MAX];
    logic [15:0]          score_q  [E_MAX];
    logic                 last_q;
    logic [CW-1:0]        idx_q;      // ENTRIES: the slot r; COUNTS: the expert x
    logic [15:0]          count [E_MAX];

    logic accept;
    logic emit;        // a write enters the output register this cycle
    logic done;        // this write is the state's last
    assign in_ready = state == IDLE;
    assign accept   = in_valid && in_ready;
    assign emit     = state != IDLE && (!out_valid || out_ready);
    assign done     = idx_q == (state == ENTRIES ? k_q : cfg_e) - CW'(1);

    // ------------------------------------------------------------------ the write
    logic [XW-1:0] x;          // the expert whose list or count is written
    logic [AW-1:0] offset_d;
    logic [31:0]   data_d;
    assign x = state == ENTRIES ? expert_q[idx_q[XW-1:0]] : idx_q[XW-1:0];
    always_comb begin
        if (state == ENTRIES) begin
            offset_d = AW'(COUNT_BYTES) * AW'(cfg_e) +
                       AW'(ENTRY_BYTES) * (AW'(cfg_capacity) * AW'(x) + AW'(count[x]));
            data_d   = {score_q[idx_q[XW-1:0]], token_q};
        end else begin
            offset_d = AW'(COUNT_BYTES) * AW'(x);
            data_d   = 32'(count[x]);
        end
    end

    // ------------------------------------------------------------------ control
    always_ff @(posedge clk) begin
        if (rst) begin
            state     <= IDLE;
            out_valid <= 1'b0;
            for (int j = 0; j < E_MAX; j++) count[j] <= '0;
        end else begin
            if (out_ready) out_valid <= 1'b0;
            if (accept) state <= ENTRIES;
            if (emit) begin
                out_valid <= 1'b1;
                // An entry takes the next slot of its list; a count, once written, is cleared.
                count[x] <= state == ENTRIES ? count[x] + 16'd1 : '0;
                if (done) state <= state == ENTRIES && last_q ? COUNTS : IDLE;
            end
        end
    end

    // Data registers are qualified by the state or out_valid and need no reset.
    always_ff @(posedge clk) begin
        if (accept) begin
            token_q <= in_token;
            k_q     <= in_k;
            last_q  <= in_last;
            for (int r = 0; r < E_MAX; r++) begin
                expert_q[r] <= in_expert[r*XW +: XW];
                score_q[r]  <= in_score[r*16 +: 16];
            end
        end
        if (accept || (emit && done)) idx_q <= '0;
        else if (emit)                idx_q <= idx_q + CW'(1);
        if (emit) begin
            out_offset <= offset_d;
            out_data   <= data_d;
        end
    end
endmodule
