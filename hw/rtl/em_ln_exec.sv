// em_ln_exec: the LAYERNORM execution unit of em_core, around the verified em_layernorm.
//
// One instruction, in the golden model's order (sim/golden/ops.py layernorm_op):
//   1. an int16 row longer than 2^14 is ILLEGAL_FIELD before anything is read; a row longer
//      than D_MAX (the unit's row buffer) is `unsupported` (UNIMPLEMENTED), nothing read;
//   2. the 16-byte parameter header at p_addr (int64 eps, uint16 mult, uint8 shift, pad);
//      an error response stops here (err), eps outside [1, 2^60) or shift > EM_SHIFT_CLAMP
//      stops here as `illegal`;
//   3. gamma (d int16 at p_addr + 16) into a local buffer, then beta (d int32 after it), each
//      beta element written with its gamma through em_layernorm's parameter port (the unit is
//      idle: the previous instruction's rows have all been written);
//   4. the m rows of X, one em_mm_rd command a row (byte-granular, row stride x_stride
//      elements), into em_layernorm, and its output rows out through em_mm_wr, one segment per
//      output beat, at y_addr + row * y_stride elements.
// em_layernorm runs with LANES = BYTES/2, so a read beat is one row beat of int16 elements or
// two of int8 (low half first) and an output beat of int16 is exactly one AXI beat.
// In place (y = x): a row is written only after it has been read whole (em_layernorm needs the
// whole row first), and reads run ahead of writes, so Y may overwrite X's rows already read: a
// Y row must not overlap an X row of a later index (true for distinct buffers and for the
// compiler's in-place final norm, same layout). The golden model reads all of X first, so other
// overlaps would differ.
// Errors: err reports any error response. An error on the header stops before anything else
// (as the golden model does); one on gamma, beta, X or Y is only reported at the end, after the
// rows were written anyway, whereas the golden model writes nothing after a failed read; the
// DRAM and the byte counters then differ from its, and when the header is in range but gamma or
// beta not, an illegal eps/shift in that header is ILLEGAL_FIELD here but DRAM_RANGE there.
// Counters with done, as the golden model counts them: rd = 16 + 6d + m*d*xs and wr = m*d*ys on
// success, rd = 16 + 6d when eps or shift is illegal, nothing when d is.
// Throughput: the parameter pass takes about 2d cycles plus three read latencies; then a row
// costs one read latency plus ceil(d/LANES) beats (two per read beat for int8), and each output
// beat is one write segment (em_mm_wr: a burst of one or two beats, about 3 cycles).
`include "edgemoe_config.svh"
`include "em_isa.svh"
`include "em_tables.svh"

module em_ln_exec #(
    parameter int BYTES    = `EM_AXI_DATA_WIDTH / 8,
    parameter int D_MAX    = 1024,                        // longest row: em_layernorm's buffer
    localparam int MW      = $bits(`EM_LAYERNORM_M_HI),
    localparam int DFW     = $bits(`EM_LAYERNORM_D_HI),
    localparam int SW      = $bits(`EM_LAYERNORM_X_STRIDE_HI)
) (
    input  logic               clk,
    input  logic               rst,          // synchronous, active high

    input  logic               start,
    input  logic               x16,
    input  logic               y16,
    input  logic [MW-1:0]      m,
    input  logic [DFW-1:0]     d,
    input  logic [31:0]        x_addr,
    input  logic [SW-1:0]      x_stride,
    input  logic [31:0]        y_addr,
    input  logic [SW-1:0]      y_stride,
    input  logic [31:0]        p_addr,
    output logic               done,         // one cycle
    output logic               err,          // with done: an error response was seen
    output logic               illegal,      // with done: d, eps or shift out of range
    output logic               unsupported,  // with done: d > D_MAX
    output logic [63:0]        cnt_rd_bytes, // with done
    output logic [63:0]        cnt_wr_bytes,

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
    localparam int DW    = BYTES * 8;
    localparam int LANES = BYTES / 2;
    localparam int IW    = $clog2(D_MAX);
    localparam int LW    = $clog2(D_MAX + 1);
    // The parameter block of hw/layouts.pack_layernorm and the limits of sim/golden/ops.py
    // (LAYERNORM_MAX_D16) and numerics.layernorm (EPS_Q_MAX = 2^60); not in the generated
    // headers yet.
    localparam int HDR_BYTES  = 16;
    localparam int HB         = (HDR_BYTES + BYTES - 1) / BYTES;   // header beats
    localparam int MAX_D16    = 1 << 14;
    localparam int EPS_LOG2   = 60;

    typedef enum logic [2:0] { S_IDLE, S_HDR, S_GAMMA, S_BETA, S_ROWS, S_DONE } state_t;
    state_t state;

    logic            f_x16, f_y16;
    logic [MW-1:0]   f_m;
    logic [LW-1:0]   f_d;
    logic [31:0]     f_p;
    logic [31:0]     x_step, y_step;     // row strides in bytes
    logic [31:0]     rows_elems;         // m * d
    logic [HB*DW-1:0] hdr;
    logic [63:0]     eps;
    logic [15:0]     mult;
    logic [7:0]      shift;

    // ------------------------------------------------------------------ reader
    logic            rd_cmd;
    logic [31:0]     rd_addr;
    logic [31:0]     rd_bytes;
    logic            rd_busy, rd_err;
    logic            rd_valid, rd_ready;
    logic [DW-1:0]   rd_data;
    logic            issued;             // the current command was given (busy follows a cycle later)

    em_mm_rd #(.BYTES(BYTES)) u_rd (
        .clk, .rst,
        .cmd_valid(rd_cmd), .cmd_addr(rd_addr), .cmd_bytes(rd_bytes), .busy(rd_busy),
        .err(rd_err),
        .out_valid(rd_valid), .out_ready(rd_ready), .out_data(rd_data),
        .ar_valid, .ar_ready, .ar_addr, .ar_len, .r_valid, .r_ready, .r_data, .r_err
    );

    // ------------------------------------------------------------------ parameters
    logic [15:0]     gbuf [D_MAX];
    logic [LW-1:0]   pi;                 // element index of gamma or beta
    logic [LW-1:0]   pbase;              // element index of the current read beat's first element
    logic            prm_we;
    logic [15:0]     p_gamma;
    logic [31:0]     p_beta;
    logic            ln_idle;
    logic            p_last;             // last element of the beat or of the vector

    always_comb begin
        p_gamma = rd_data[16 * (32'(pi - pbase) % (BYTES / 2)) +: 16];
        p_beta  = rd_data[32 * (32'(pi - pbase) % (BYTES / 4)) +: 32];
    end
    assign p_last = pi + LW'(1) == f_d
                    || pi - pbase == LW'(state == S_GAMMA ? BYTES / 2 - 1 : BYTES / 4 - 1);
    assign prm_we = state == S_BETA && rd_valid;

    // ------------------------------------------------------------------ rows in
    logic [MW-1:0]   ri;                 // row being read
    logic [31:0]     x_row;
    logic [LW-1:0]   xbase;              // element index of lane 0 of the next row beat
    logic            half;               // int8: the high half of the read beat is next
    logic            in_valid, in_ready, in_last;
    logic [LANES*16-1:0] in_x;

    always_comb begin
        for (int i = 0; i < LANES; i++) begin
            in_x[i*16 +: 16] = f_x16 ? rd_data[i*16 +: 16]
                                     : {{8{rd_data[(32'(half) * LANES + i) * 8 + 7]}},
                                        rd_data[(32'(half) * LANES + i) * 8 +: 8]};
        end
    end
    assign in_last  = 32'(xbase) + 32'(LANES) >= 32'(f_d);
    assign in_valid = state == S_ROWS && issued && ri != f_m && rd_valid;

    always_comb begin
        rd_ready = 1'b0;
        case (state)
            S_HDR:   rd_ready = 1'b1;
            S_GAMMA: rd_ready = p_last;
            S_BETA:  rd_ready = p_last;
            S_ROWS:  rd_ready = issued && ri != f_m && in_ready && (f_x16 || half || in_last);
            default: rd_ready = 1'b0;
        endcase
    end

    // ------------------------------------------------------------------ LayerNorm
    logic                out_valid, out_ready, out_last;
    logic [LANES*16-1:0] out_y;

    em_layernorm #(.LANES(LANES), .X_WIDTH(16), .D_MAX(D_MAX)) u_ln (
        .clk, .rst,
        .prm_we, .prm_idx(IW'(pi)), .prm_gamma(gbuf[IW'(pi)]), .prm_beta(p_beta), .idle(ln_idle),
        .in_valid, .in_ready, .in_x, .in_d(f_d), .in_eps(eps), .in_mult(mult),
        .in_shift(shift[5:0]), .in_out16(f_y16),
        .out_valid, .out_ready, .out_y, .out_last
    );

    // ------------------------------------------------------------------ rows out
    logic [MW-1:0]   wi;                 // row being written
    logic [31:0]     y_row;
    logic [LW-1:0]   ybase;
    logic [DW-1:0]   seg;
    logic [15:0]     seg_bytes;
    logic            wr_ready, wr_busy, wr_err;

    always_comb begin
        seg = out_y;
        if (!f_y16) begin
            seg = '0;
            for (int i = 0; i < LANES; i++) seg[i*8 +: 8] = out_y[i*16 +: 8];
        end
    end
    logic [LW-1:0]   seg_elems;
    assign seg_elems = f_d - ybase < LW'(LANES) ? f_d - ybase : LW'(LANES);
    assign seg_bytes = 16'(seg_elems) << f_y16;
    assign out_ready = wr_ready;

    em_mm_wr #(.BYTES(BYTES), .MAX_BYTES(BYTES)) u_wr (
        .clk, .rst,
        .cmd_valid(out_valid), .cmd_addr(y_row + (32'(ybase) << f_y16)), .cmd_bytes(seg_bytes),
        .cmd_data(seg), .cmd_ready(wr_ready), .busy(wr_busy), .err(wr_err),
        .aw_valid, .aw_ready, .aw_addr, .aw_len, .w_valid, .w_ready, .w_data, .w_strb, .w_last,
        .b_valid, .b_ready, .b_err
    );

    // ------------------------------------------------------------------ control
    logic       err_q;
    logic [63:0] prm_bytes;

    assign prm_bytes = 64'(HDR_BYTES) + 64'(f_d) * 64'd6;

    always_ff @(posedge clk) begin
        if (rst) begin
            state  <= S_IDLE;
            done   <= 1'b0;
            rd_cmd <= 1'b0;
        end else begin
            done   <= 1'b0;
            rd_cmd <= 1'b0;
            if (rd_err || wr_err) err_q <= 1'b1;
            if (rd_cmd) issued <= 1'b1;
            case (state)
                S_IDLE: if (start) begin
                    f_x16       <= x16;
                    f_y16       <= y16;
                    f_m         <= m;
                    f_d         <= LW'(d);
                    f_p         <= p_addr;
                    x_step      <= 32'(x_stride) << x16;
                    y_step      <= 32'(y_stride) << y16;
                    rows_elems  <= 32'(m) * 32'(d);
                    x_row       <= x_addr;
                    y_row       <= y_addr;
                    err_q       <= 1'b0;
                    err         <= 1'b0;
                    illegal     <= 1'b0;
                    unsupported <= 1'b0;
                    cnt_rd_bytes <= '0;
                    cnt_wr_bytes <= '0;
                    if (x16 && 32'(d) > MAX_D16) begin
                        illegal <= 1'b1;
                        state   <= S_DONE;
                    end else if (32'(d) > D_MAX) begin
                        unsupported <= 1'b1;
                        state       <= S_DONE;
                    end else begin
                        rd_cmd   <= 1'b1;
                        rd_addr  <= p_addr;
                        rd_bytes <= 32'(HDR_BYTES);
                        issued   <= 1'b0;
                        state    <= S_HDR;
                    end
                end
                S_HDR: begin
                    if (rd_valid) hdr <= (hdr >> DW) | ((HB*DW)'(rd_data) << ((HB - 1) * DW));
                    if (issued && !rd_busy && !rd_cmd) begin
                        eps   <= hdr[63:0];
                        mult  <= hdr[79:64];
                        shift <= hdr[87:80];
                        if (err_q) begin
                            err   <= 1'b1;
                            state <= S_DONE;
                        end else if (hdr[63:0] == '0 || hdr[63:EPS_LOG2] != '0
                                     || 32'(hdr[87:80]) > `EM_SHIFT_CLAMP) begin
                            illegal      <= 1'b1;
                            cnt_rd_bytes <= prm_bytes;
                            state        <= S_DONE;
                        end else begin
                            rd_cmd   <= 1'b1;
                            rd_addr  <= f_p + 32'(HDR_BYTES);
                            rd_bytes <= 32'(f_d) << 1;
                            issued   <= 1'b0;
                            pi       <= '0;
                            pbase    <= '0;
                            state    <= S_GAMMA;
                        end
                    end
                end
                S_GAMMA: begin
                    if (rd_valid) begin
                        gbuf[IW'(pi)] <= p_gamma;
                        pi <= pi + LW'(1);
                        if (p_last) pbase <= pi + LW'(1);
                    end
                    if (issued && !rd_busy && !rd_cmd) begin
                        rd_cmd   <= 1'b1;
                        rd_addr  <= f_p + 32'(HDR_BYTES) + (32'(f_d) << 1);
                        rd_bytes <= 32'(f_d) << 2;
                        issued   <= 1'b0;
                        pi       <= '0;
                        pbase    <= '0;
                        state    <= S_BETA;
                    end
                end
                S_BETA: begin
                    if (rd_valid) begin
                        pi <= pi + LW'(1);
                        if (p_last) pbase <= pi + LW'(1);
                    end
                    if (issued && !rd_busy && !rd_cmd) begin
                        ri     <= '0;
                        wi     <= '0;
                        xbase  <= '0;
                        ybase  <= '0;
                        half   <= 1'b0;
                        issued <= 1'b0;
                        state  <= S_ROWS;
                    end
                end
                S_ROWS: begin
                    // One read command a row, the next once the reader has let go of this one.
                    if (!issued && !rd_cmd && !rd_busy && ri != f_m) begin
                        rd_cmd   <= 1'b1;
                        rd_addr  <= x_row;
                        rd_bytes <= 32'(f_d) << f_x16;
                    end
                    if (in_valid && in_ready) begin
                        half <= !f_x16 && !half && !in_last;
                        if (in_last) begin
                            xbase  <= '0;
                            ri     <= ri + MW'(1);
                            x_row  <= x_row + x_step;
                            issued <= 1'b0;
                        end else begin
                            xbase <= xbase + LW'(LANES);
                        end
                    end
                    if (out_valid && out_ready) begin
                        if (out_last) begin
                            ybase <= '0;
                            wi    <= wi + MW'(1);
                            y_row <= y_row + y_step;
                        end else begin
                            ybase <= ybase + LW'(LANES);
                        end
                    end
                    if (wi == f_m && !wr_busy && !out_valid) begin
                        err          <= err_q;
                        cnt_rd_bytes <= prm_bytes + (64'(rows_elems) << f_x16);
                        cnt_wr_bytes <= 64'(rows_elems) << f_y16;
                        state        <= S_DONE;
                    end
                end
                S_DONE: begin
                    done  <= 1'b1;
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // ln_idle is the unit's own precondition for the parameter port: every row of the previous
    // instruction has left before S_DONE, so it always holds in S_BETA.
    /* verilator lint_off UNUSEDSIGNAL */
    logic unused;
    /* verilator lint_on UNUSEDSIGNAL */
    assign unused = ^{ln_idle, shift[7:6], rd_data};
endmodule
