// em_matmul: the MATMUL execution unit (non-expert): Y = epilogue(X . W), see docs/isa.md.
//
// Loops, as compiler/cyclemodel.py describes them:
//   for each token block of mt <= min(EM_ACC_BUFFER_DEPTH, EM_ACT_BUFFER_DEPTH / KT) rows:
//     load the block's X rows into the activation buffer (KT words of ROWS activations per
//     row, int8 sign-extended, zero padded past k)
//     for each output tile nt (COLS channels):
//       read the tile's epilogue records (bias, mult, shift)
//       for each reduction tile kt: load weight tile (nt, kt) into the array's shadow buffer,
//         then stream the block's tokens (swap with the first, first_k on kt = 0)
//       drain the array, then per row: read R (if residual), read the accumulators, requantize,
//         GELU (if gelu), add R with saturation, write the row segment of Y (records and R
//         segments are collected beat by beat and used lane-parallel)
// KT = ceil(k / ROWS), NT = ceil(n / COLS); weight tiles are read in their packed order
// (output-tile major), so the tile pointer only ever advances by one tile.
//
// Numerics are em_requant (at 16 bits; an int8 output is that clamped to int8, which equals
// requantize at 8 bits because both saturate the same rounded value), em_gelu and a saturating
// add, i.e. sim/golden/ops.py matmul. Every R segment of a row is read before the same segment
// of Y is written, so R may be Y (the residual stream updated in place).
//
// Overlap, so far: X loads one activation word per cycle; within an output tile the next
// weight tile is prefetched from the first token of the current one (a swap costs no cycle
// once the block has at least TILE_BEATS tokens); the epilogue is a pipeline (accumulator
// reads run ahead through em_requant and em_gelu, which hold back-pressure; R is fetched one
// row ahead; a row leaves for the writer as soon as its previous row's beats are out, without
// waiting for write responses). Not yet overlapped: per output tile the record read, the first
// tile load, the array drain and the epilogue run between compute phases, and a token block's
// X load between blocks, which is where the cycles above the cycle model go (bench log).
// Counters follow the golden model's accounting of the instruction (X, packed weights once,
// epilogue records once, R; Y), reported with `done`, not the bus traffic (weights and records
// are re-read per token block). `mac_busy` is high in every cycle in which the array consumes
// a token (MAC_CYCLES). Assumes ROWS*2 <= BYTES (an int16 X word within one beat), true for
// every preset.
//
// Errors: an error response on any read or write ends the instruction with `err` (DRAM_RANGE)
// after it has run to completion; rows of X longer than the activation buffer
// (KT > EM_ACT_BUFFER_DEPTH) end it at once with `unsupported`. Handshake: `start` (one cycle,
// while idle) latches the fields; `done` pulses once at the end.
`include "edgemoe_config.svh"
`include "em_isa.svh"

module em_matmul #(
    parameter int ROWS      = `EM_ARRAY_ROWS,
    parameter int COLS      = `EM_ARRAY_COLS,
    parameter int ACT_WIDTH = `EM_ACT_WIDTH,
    parameter int ACC_WIDTH = `EM_ACC_WIDTH,
    parameter int ACC_DEPTH = `EM_ACC_BUFFER_DEPTH,
    parameter int ACT_DEPTH = `EM_ACT_BUFFER_DEPTH,
    parameter int BYTES     = `EM_AXI_DATA_WIDTH / 8,
    localparam int MW       = $bits(`EM_MATMUL_M_HI),
    localparam int KW       = $bits(`EM_MATMUL_K_HI),
    localparam int NW       = $bits(`EM_MATMUL_N_HI),
    localparam int SW       = $bits(`EM_MATMUL_X_STRIDE_HI),
    localparam int FW       = $bits(`EM_MATMUL_GELU_FRAC_HI)
) (
    input  logic               clk,
    input  logic               rst,          // synchronous, active high

    input  logic               start,
    input  logic               x16,
    input  logic               y16,
    input  logic               gelu,
    input  logic               residual,
    input  logic [MW-1:0]      m,
    input  logic [KW-1:0]      k,
    input  logic [NW-1:0]      n,
    input  logic [31:0]        x_addr,
    input  logic [SW-1:0]      x_stride,
    input  logic [31:0]        w_addr,
    input  logic [31:0]        p_addr,
    input  logic [31:0]        y_addr,
    input  logic [SW-1:0]      y_stride,
    input  logic [31:0]        r_addr,
    input  logic [FW-1:0]      gelu_frac,
    output logic               done,         // one cycle
    output logic               err,          // with done: an error response was seen
    output logic               unsupported,  // with done: k too long for the activation buffer
    output logic [63:0]        cnt_rd_bytes, // with done
    output logic [63:0]        cnt_wr_bytes,
    output logic               mac_busy,

    output logic               ar_valid,
    input  logic               ar_ready,
    output logic [31:0]        ar_addr,
    output logic [7:0]         ar_len,
    input  logic               r_valid,
    output logic               r_ready,
    input  logic [BYTES*8-1:0] r_data,
    input  logic               r_err,
    output logic               aw_valid,
    input  logic               aw_ready,
    output logic [31:0]        aw_addr,
    output logic [7:0]         aw_len,
    output logic               w_valid,
    input  logic               w_ready,
    output logic [BYTES*8-1:0] w_data,
    output logic [BYTES-1:0]   w_strb,
    output logic               w_last,
    input  logic               b_valid,
    output logic               b_ready,
    input  logic               b_err
);
    localparam int DW         = BYTES * 8;
    localparam int LB         = $clog2(BYTES);
    localparam int TILE_BYTES = ROWS * COLS * `EM_WEIGHT_WIDTH / 8;
    localparam int LOAD_WIDTH = DW < TILE_BYTES * 8 ? DW : TILE_BYTES * 8;
    localparam int CHUNKS     = TILE_BYTES * 8 / LOAD_WIDTH;
    localparam int IDX_WIDTH  = CHUNKS > 1 ? $clog2(CHUNKS) : 1;
    localparam int TILE_BEATS = (TILE_BYTES + BYTES - 1) / BYTES;
    localparam int TAG_WIDTH  = $clog2(ACC_DEPTH);
    localparam int AW         = $clog2(ACT_DEPTH);
    localparam int WORD       = ROWS * ACT_WIDTH;
    localparam int YB         = 2 * COLS;              // bytes of an int16 output row segment
    // Beats of the longest epilogue-record and R segments, and their collecting registers.
    localparam int P_BEATS    = (8 * COLS + BYTES - 1) / BYTES;
    localparam int R_BEATS    = (YB + BYTES - 1) / BYTES;
    localparam int BW         = P_BEATS > 1 ? $clog2(P_BEATS + 1) : 1;
    // Cycles from the last token into the array until its accumulators can be read: the
    // array's latency (2 + log2(ROWS)) plus the accumulator's two-cycle update, plus one for
    // the activation buffer's read register.
    localparam int DRAIN      = 2 + $clog2(ROWS) + 3;
    localparam logic signed [15:0] Y8_MAX = 16'sd127;
    localparam logic signed [15:0] Y8_MIN = -16'sd128;

    typedef enum logic [3:0] {
        S_IDLE, S_CAP, S_BLOCK, S_XROW, S_XDATA, S_PARAM, S_PDATA, S_WLOAD, S_STREAM, S_DRAIN,
        S_EPI, S_FINISH
    } state_t;
    state_t state;

    // Which consumer the reader's current command feeds.
    typedef enum logic [1:0] { O_X, O_P, O_W, O_R } owner_t;
    owner_t owner;

    // Fields, latched at start.
    logic          f_x16, f_y16, f_gelu, f_residual;
    logic [MW-1:0] f_m;
    logic [KW-1:0] f_k;
    logic [NW-1:0] f_n;
    logic [31:0]   f_x_addr, f_w_addr, f_p_addr, f_y_addr, f_r_addr;
    logic [SW-1:0] f_x_stride, f_y_stride;
    logic [FW-1:0] f_gelu_frac;

    logic [KW-1:0] kt_n;        // KT
    logic [NW-1:0] nt_n;        // NT
    logic [15:0]   cap;         // tokens per block
    logic [31:0]   cap_words;   // cap * KT
    logic [MW-1:0] m0;          // first row of the block
    logic [MW-1:0] mt;          // rows in the block
    logic [MW-1:0] i;           // row (X load) or token (stream) within the block
    logic [NW-1:0] nt;
    logic [KW-1:0] kt;
    logic [NW-1:0] n_left;      // n - nt * COLS
    logic [NW-1:0] ncol0;       // nt * COLS
    logic [KW-1:0] e;           // first element of the X word being loaded
    logic [LB:0]   pos;         // its byte within the current beat
    logic [BW-1:0] sb;          // beat of the record or R segment being collected
    logic [31:0]   p_ptr;       // epilogue records of tile nt
    logic [31:0]   w_ptr;       // next weight tile
    logic [AW-1:0] act_wp;
    logic [AW-1:0] act_rp;
    logic [7:0]    cnt;
    logic          bad;

    logic [NW-1:0] ncols;       // channels in tile nt
    assign ncols = n_left < NW'(COLS) ? n_left : NW'(COLS);

    // ------------------------------------------------------------------ DRAM reader and writer
    logic            rd_cmd;
    logic [31:0]     rd_addr;
    logic [31:0]     rd_bytes;
    logic            rd_busy, rd_err;
    logic            rd_valid, rd_ready;
    logic [DW-1:0]   rd_data;
    logic            rd_free;   // no command in flight: a new one may be issued
    logic            wr_cmd;
    logic [31:0]     wr_addr;
    logic [15:0]     wr_bytes;
    logic [YB*8-1:0] wr_data;
    logic            wr_cmd_ready, wr_busy, wr_err;

    assign rd_free = !rd_busy && !rd_cmd;

    em_mm_rd #(.BYTES(BYTES)) u_rd (
        .clk, .rst,
        .cmd_valid(rd_cmd), .cmd_addr(rd_addr), .cmd_bytes(rd_bytes), .busy(rd_busy),
        .err(rd_err), .out_valid(rd_valid), .out_ready(rd_ready), .out_data(rd_data),
        .ar_valid, .ar_ready, .ar_addr, .ar_len, .r_valid, .r_ready, .r_data, .r_err
    );

    em_mm_wr #(.BYTES(BYTES), .MAX_BYTES(YB)) u_wr (
        .clk, .rst,
        .cmd_valid(wr_cmd), .cmd_addr(wr_addr), .cmd_bytes(wr_bytes), .cmd_data(wr_data),
        .cmd_ready(wr_cmd_ready), .busy(wr_busy), .err(wr_err),
        .aw_valid, .aw_ready, .aw_addr, .aw_len, .w_valid, .w_ready, .w_data, .w_strb, .w_last,
        .b_valid, .b_ready, .b_err
    );

    // ------------------------------------------------------------------ X rows, a word a cycle
    // The reader's stream starts at the row's first byte, so word w (ROWS elements) sits at
    // stream byte w*ROWS*size and never straddles a beat (ROWS*2 <= BYTES in every preset).
    // Lanes past k read bytes beyond the row: they are zeroed, which is the tile padding.
    logic [DW-1:0]   beat_at;
    logic [WORD-1:0] xword;
    logic            x_last;    // the row's last word
    logic            x_beat_end;
    assign beat_at    = rd_data >> {pos, 3'b000};
    assign x_last     = 32'(e) + 32'(ROWS) >= 32'(f_k);
    assign x_beat_end = 32'(pos) + (32'(ROWS) << f_x16) >= 32'(BYTES);
    for (genvar r = 0; r < ROWS; r++) begin : g_xlane
        logic [15:0] v;
        assign v = f_x16 ? beat_at[r*16 +: 16] : {{8{beat_at[r*8+7]}}, beat_at[r*8 +: 8]};
        assign xword[r*ACT_WIDTH +: ACT_WIDTH] =
            32'(e) + 32'(r) < 32'(f_k) ? ACT_WIDTH'($signed(v)) : '0;
    end

    logic [WORD-1:0] act_mem [ACT_DEPTH];
    always_ff @(posedge clk) begin
        if (owner == O_X && rd_valid) act_mem[act_wp] <= xword;
    end

    // ------------------------------------------------------------------ records and R rows
    // Collected beat by beat, then used lane-parallel: record c at byte 8c, R element c at
    // byte c*size of the (realigned) segment. Lanes past ncols hold bytes beyond the segment;
    // they only reach output channels that are never written.
    // A record's pad byte and the top two bits of its shift byte are never looked at (the bench
    // keeps shifts within 0..63; the golden model stops larger ones with ILLEGAL_FIELD).
    /* verilator lint_off UNUSEDSIGNAL */
    logic [P_BEATS*DW-1:0] pseg;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [R_BEATS*DW-1:0] rseg;
    logic [BW-1:0]         seg_beats;   // beats of the segment being collected
    assign seg_beats = BW'(owner == O_P ? (32'(ncols) * 32'd8 + 32'(BYTES - 1)) >> LB
                                        : ((32'(ncols) << f_y16) + 32'(BYTES - 1)) >> LB);

    always_ff @(posedge clk) begin
        if (rd_valid && owner == O_P) pseg[32'(sb)*DW +: DW] <= rd_data;
        if (rd_valid && owner == O_R) rseg[32'(sb)*DW +: DW] <= rd_data;
    end

    always_comb begin
        case (owner)
            O_X:     rd_ready = x_last || x_beat_end;
            default: rd_ready = 1'b1;
        endcase
    end

    // ------------------------------------------------------------------ MAC unit
    logic                 s_valid;  // token stage behind the activation buffer's read
    logic                 s_swap;
    logic                 s_first;
    logic [TAG_WIDTH-1:0] s_tag;
    logic [WORD-1:0]      act_q;
    logic [MW-1:0]        ia;       // epilogue: next accumulator read
    logic                 acc_rd_valid, acc_rd_ready;
    logic                 acc_valid, acc_ready;
    logic [COLS*ACC_WIDTH-1:0] acc;
    logic [IDX_WIDTH-1:0] chunk;
    logic                 w_loading;  // a weight tile is streaming into the shadow buffer
    logic                 w_loaded;   // ... and has arrived, not swapped in yet

    always_ff @(posedge clk) begin
        act_q   <= act_mem[act_rp];
        // A swap only with the first token of a tile (in_swap alone would swap too).
        s_swap  <= state == S_STREAM && i == '0;
        s_first <= kt == '0;
        s_tag   <= TAG_WIDTH'(i);
    end

    assign mac_busy     = s_valid;
    assign acc_rd_valid = state == S_EPI && ia != mt;

    /* verilator lint_off PINCONNECTEMPTY */
    em_mac_unit #(.ROWS(ROWS), .COLS(COLS), .ACT_WIDTH(ACT_WIDTH), .ACC_WIDTH(ACC_WIDTH),
                  .DEPTH(ACC_DEPTH), .LOAD_WIDTH(LOAD_WIDTH)) u_mac (
        .clk, .rst,
        .w_valid(owner == O_W && rd_valid), .w_idx(chunk), .w_data(rd_data[LOAD_WIDTH-1:0]),
        .in_valid(s_valid), .in_swap(s_swap), .in_x(act_q), .in_tag(s_tag), .in_first_k(s_first),
        .rd_valid(acc_rd_valid), .rd_ready(acc_rd_ready), .rd_token(TAG_WIDTH'(ia)),
        .out_valid(acc_valid), .out_ready(acc_ready), .out_token(), .out_acc(acc)
    );
    /* verilator lint_on PINCONNECTEMPTY */

    // ------------------------------------------------------------------ epilogue
    logic [COLS*32-1:0] bias;
    logic [COLS*16-1:0] mult;
    logic [COLS*6-1:0]  shift;
    logic [COLS*16-1:0] rvec;     // R segment, sign-extended
    logic               rq_valid, rq_ready;
    logic [COLS*16-1:0] rq_y;
    logic [COLS*16-1:0] rq_sat;   // clamped to int8 unless y16
    logic               g_in_ready, g_valid;
    logic [COLS*16-1:0] g_y;
    logic               res_valid, res_ready;
    logic [COLS*16-1:0] res;

    for (genvar c = 0; c < COLS; c++) begin : g_lane
        logic [15:0] rv;
        assign bias[c*32 +: 32] = pseg[c*64 +: 32];
        assign mult[c*16 +: 16] = pseg[c*64 + 32 +: 16];
        assign shift[c*6 +: 6]  = pseg[c*64 + 48 +: 6];
        assign rv = f_y16 ? rseg[c*16 +: 16] : {{8{rseg[c*8+7]}}, rseg[c*8 +: 8]};
        assign rvec[c*16 +: 16] = rv;
    end

    em_requant #(.LANES(COLS), .ACC_WIDTH(ACC_WIDTH), .OUT_WIDTH(16)) u_rq (
        .clk, .rst,
        .in_valid(acc_valid), .in_ready(acc_ready), .in_acc(acc), .in_bias(bias),
        .in_mult(mult), .in_shift(shift),
        .out_valid(rq_valid), .out_ready(rq_ready), .out_data(rq_y)
    );

    for (genvar c = 0; c < COLS; c++) begin : g_sat8
        logic signed [15:0] v;
        assign v = rq_y[c*16 +: 16];
        assign rq_sat[c*16 +: 16] = f_y16 ? v : v > Y8_MAX ? Y8_MAX : v < Y8_MIN ? Y8_MIN : v;
    end

    em_gelu #(.LANES(COLS)) u_gelu (
        .clk, .rst,
        .in_valid(rq_valid && f_gelu), .in_ready(g_in_ready), .in_x(rq_sat),
        .in_frac(f_gelu_frac), .in_out16(f_y16),
        .out_valid(g_valid), .out_ready(res_ready && f_gelu), .out_y(g_y)
    );

    assign rq_ready  = f_gelu ? g_in_ready : res_ready;
    assign res_valid = f_gelu ? g_valid : rq_valid;
    assign res       = f_gelu ? g_y : rq_sat;

    // The residual add, saturating, and the row segment's bytes.
    logic [COLS*16-1:0] ysat;
    for (genvar c = 0; c < COLS; c++) begin : g_res
        logic signed [16:0] s;
        logic signed [16:0] r;
        assign r = f_residual ? 17'($signed(rvec[c*16 +: 16])) : 17'sd0;
        assign s = 17'($signed(res[c*16 +: 16])) + r;
        assign ysat[c*16 +: 16] =
            f_y16 ? (s > 17'sd32767 ? 16'sh7fff : s < -17'sd32768 ? 16'sh8000 : s[15:0])
                  : (s > 17'sd127 ? 16'sd127 : s < -17'sd128 ? 16'shff80 : s[15:0]);
    end

    logic [YB*8-1:0] ybytes;
    always_comb begin
        ybytes = '0;
        for (int c = 0; c < COLS; c++) begin
            if (f_y16) ybytes[c*16 +: 16] = ysat[c*16 +: 16];
            else       ybytes[c*8 +: 8]   = ysat[c*16 +: 8];
        end
    end

    // Epilogue rows: accumulator reads run ahead (ia), R segments are fetched one row ahead
    // into rseg (ir, r_full), results leave in order (ic) when their R is there and the writer
    // takes a command. Each R segment is read before that segment of Y is written.
    logic [MW-1:0] ir;
    logic [MW-1:0] ic;
    logic          r_fetch;    // an R read is in flight
    logic          r_full;     // rseg holds row ic's R
    logic          consume;
    assign consume   = state == S_EPI && res_valid && (!f_residual || r_full)
                       && wr_cmd_ready && !wr_cmd;
    assign res_ready = consume;

    // ------------------------------------------------------------------ addresses
    logic [31:0] x_row;        // m0 + i
    logic [31:0] r_elem;       // element offset of row ir's R segment
    logic [31:0] y_elem;       // ... of row ic's Y segment
    assign x_row  = 32'(m0) + 32'(i);
    assign r_elem = (32'(m0) + 32'(ir)) * 32'(f_y_stride) + 32'(ncol0);
    assign y_elem = (32'(m0) + 32'(ic)) * 32'(f_y_stride) + 32'(ncol0);

    // ------------------------------------------------------------------ control
    always_ff @(posedge clk) begin
        if (rst) begin
            state     <= S_IDLE;
            done      <= 1'b0;
            rd_cmd    <= 1'b0;
            wr_cmd    <= 1'b0;
            s_valid   <= 1'b0;
            w_loading <= 1'b0;
            w_loaded  <= 1'b0;
            r_fetch   <= 1'b0;
            r_full    <= 1'b0;
        end else begin
            done    <= 1'b0;
            rd_cmd  <= 1'b0;
            wr_cmd  <= 1'b0;
            s_valid <= 1'b0;
            if (rd_err || wr_err) bad <= 1'b1;

            // Weight tiles, in any state: chunks go straight into the shadow buffer.
            if (owner == O_W && rd_valid) begin
                chunk <= chunk + IDX_WIDTH'(1);
                if (32'(chunk) == 32'(TILE_BEATS - 1)) begin
                    w_loading <= 1'b0;
                    w_loaded  <= 1'b1;
                end
            end
            // Records and R segments, beat by beat.
            if ((owner == O_P || owner == O_R) && rd_valid) begin
                sb <= sb + BW'(1);
                if (sb == seg_beats - BW'(1) && owner == O_R) begin
                    r_fetch <= 1'b0;
                    r_full  <= 1'b1;
                    ir      <= ir + MW'(1);
                end
            end

            case (state)
                S_IDLE: if (start) begin
                    f_x16       <= x16;
                    f_y16       <= y16;
                    f_gelu      <= gelu;
                    f_residual  <= residual;
                    f_m         <= m;
                    f_k         <= k;
                    f_n         <= n;
                    f_x_addr    <= x_addr;
                    f_x_stride  <= x_stride;
                    f_w_addr    <= w_addr;
                    f_p_addr    <= p_addr;
                    f_y_addr    <= y_addr;
                    f_y_stride  <= y_stride;
                    f_r_addr    <= r_addr;
                    f_gelu_frac <= gelu_frac;
                    kt_n        <= KW'((32'(k) + 32'(ROWS - 1)) / 32'(ROWS));
                    nt_n        <= NW'((32'(n) + 32'(COLS - 1)) / 32'(COLS));
                    cap         <= '0;
                    cap_words   <= '0;
                    m0          <= '0;
                    bad         <= 1'b0;
                    unsupported <= 1'b0;
                    state       <= m == '0 ? S_FINISH : S_CAP;
                end
                // Tokens per block: as many rows as fit both buffers (once per instruction,
                // at most ACC_DEPTH cycles, which keeps a divider out of the design).
                S_CAP: if (32'(cap) < 32'(ACC_DEPTH) && cap_words + 32'(kt_n) <= 32'(ACT_DEPTH)) begin
                    cap       <= cap + 16'd1;
                    cap_words <= cap_words + 32'(kt_n);
                end else if (cap == '0) begin
                    unsupported <= 1'b1;
                    state       <= S_FINISH;
                end else begin
                    state <= S_BLOCK;
                end
                S_BLOCK: begin
                    mt     <= 32'(f_m - m0) < 32'(cap) ? f_m - m0 : MW'(cap);
                    i      <= '0;
                    act_wp <= '0;
                    nt     <= '0;
                    n_left <= f_n;
                    ncol0  <= '0;
                    p_ptr  <= f_p_addr;
                    w_ptr  <= f_w_addr;
                    state  <= S_XROW;
                end
                S_XROW: begin
                    rd_cmd   <= 1'b1;
                    owner    <= O_X;
                    rd_addr  <= f_x_addr + ((x_row * 32'(f_x_stride)) << f_x16);
                    rd_bytes <= 32'(f_k) << f_x16;
                    e        <= '0;
                    pos      <= '0;
                    state    <= S_XDATA;
                end
                S_XDATA: if (rd_valid) begin
                    e      <= e + KW'(ROWS);
                    pos    <= x_beat_end ? '0 : pos + ((LB+1)'(ROWS) << f_x16);
                    act_wp <= act_wp + AW'(1);
                    if (x_last) begin
                        i     <= i + MW'(1);
                        state <= i + MW'(1) == mt ? S_PARAM : S_XROW;
                    end
                end
                S_PARAM: begin
                    rd_cmd   <= 1'b1;
                    owner    <= O_P;
                    rd_addr  <= p_ptr;
                    rd_bytes <= 32'(ncols) << 3;
                    p_ptr    <= p_ptr + 32'(COLS * 8);
                    sb       <= '0;
                    kt       <= '0;
                    state    <= S_PDATA;
                end
                S_PDATA: if (rd_valid && sb == seg_beats - BW'(1)) state <= S_WLOAD;
                // The tile (nt, kt) is loaded, or is being loaded since the previous tile's
                // first token (prefetch within an output tile), or is loaded now.
                S_WLOAD: if (w_loaded) begin
                    i     <= '0;
                    act_rp <= AW'(kt);
                    state <= S_STREAM;
                end else if (!w_loading && rd_free) begin
                    load_tile();
                end
                S_STREAM: begin
                    // act_q, s_swap, s_first, s_tag take this cycle's token (registers above).
                    s_valid <= 1'b1;
                    act_rp  <= act_rp + AW'(kt_n);
                    i       <= i + MW'(1);
                    if (i == '0) begin
                        w_loaded <= 1'b0;
                        // The reader is idle here: prefetch the next tile of this output tile.
                        if (kt + KW'(1) != kt_n) load_tile();
                    end
                    if (i + MW'(1) == mt) begin
                        if (kt + KW'(1) == kt_n) begin
                            cnt   <= '0;
                            state <= S_DRAIN;
                        end else begin
                            kt    <= kt + KW'(1);
                            state <= S_WLOAD;
                        end
                    end
                end
                S_DRAIN: begin
                    cnt <= cnt + 8'd1;
                    if (cnt == 8'(DRAIN)) begin
                        ia     <= '0;
                        ir     <= '0;
                        ic     <= '0;
                        r_full <= 1'b0;
                        state  <= S_EPI;
                    end
                end
                S_EPI: begin
                    if (acc_rd_valid && acc_rd_ready) ia <= ia + MW'(1);
                    if (f_residual && !r_fetch && !r_full && ir != mt && rd_free) begin
                        rd_cmd   <= 1'b1;
                        owner    <= O_R;
                        rd_addr  <= f_r_addr + (r_elem << f_y16);
                        rd_bytes <= 32'(ncols) << f_y16;
                        sb       <= '0;
                        r_fetch  <= 1'b1;
                    end
                    if (consume) begin
                        wr_cmd   <= 1'b1;
                        wr_addr  <= f_y_addr + (y_elem << f_y16);
                        wr_bytes <= 16'(ncols) << f_y16;
                        wr_data  <= ybytes;
                        r_full   <= 1'b0;
                        ic       <= ic + MW'(1);
                        if (ic + MW'(1) == mt) begin
                            if (nt + NW'(1) != nt_n) begin
                                nt     <= nt + NW'(1);
                                n_left <= n_left - NW'(COLS);
                                ncol0  <= ncol0 + NW'(COLS);
                                state  <= S_PARAM;
                            end else if (32'(m0) + 32'(mt) != 32'(f_m)) begin
                                m0    <= m0 + mt;
                                state <= S_BLOCK;
                            end else begin
                                state <= S_FINISH;
                            end
                        end
                    end
                end
                S_FINISH: if (!wr_busy && !rd_busy && !wr_cmd) begin
                    done  <= 1'b1;
                    err   <= bad;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // Read the weight tile at w_ptr into the shadow buffer.
    task automatic load_tile();
        rd_cmd    <= 1'b1;
        owner     <= O_W;
        rd_addr   <= w_ptr;
        rd_bytes  <= 32'(TILE_BYTES);
        w_ptr     <= w_ptr + 32'(TILE_BYTES);
        chunk     <= '0;
        w_loading <= 1'b1;
    endtask

    // The golden model's accounting: X, the packed weights and the records once, R; Y.
    logic [63:0] y_bytes;
    assign y_bytes = (64'(f_m) * 64'(f_n)) << f_y16;
    always_comb begin
        cnt_rd_bytes = '0;
        cnt_wr_bytes = '0;
        if (f_m != '0 && !unsupported) begin
            cnt_rd_bytes = ((64'(f_m) * 64'(f_k)) << f_x16)
                         + 64'(kt_n) * 64'(nt_n) * 64'(TILE_BYTES)
                         + (64'(f_n) << 3)
                         + (f_residual ? y_bytes : 64'd0);
            cnt_wr_bytes = y_bytes;
        end
    end
endmodule
