// em_dma: the DMA_COPY execution unit (2-D strided rows, indexed gather/scatter) on AXI4.
//
// Semantics are those of sim/golden/ops.py dma_copy: for r in 0..rows-1, with
// s = idx[r] if src_indexed else r and d = idx[r] if dst_indexed else r, copy row_bytes bytes
// from src_addr + s*src_stride to dst_addr + d*dst_stride, rows in increasing r so that where
// destination rows overlap the later row wins. Addresses, strides and row lengths are byte
// granular; addresses wrap at 2^32.
//
// Rows are processed one at a time. For an indexed copy, the row's uint16 index is first read
// (one or two beats: it may straddle a beat). Then the source beats covering the row are read
// in INCR bursts while the destination beats are written in INCR bursts (both split by
// em_axi_burst at 4 KiB and 256 beats); a two-beat window {incoming, previous} realigns the
// source bytes to the destination's byte lanes (shift (src % BYTES - dst % BYTES) mod BYTES),
// and WSTRB masks the bytes before the row's first and after its last destination byte. A row
// is done once all its write responses are back, so a later instruction (or the bench, at the
// retire pulse) sees every byte in DRAM. Throughput: one beat per cycle inside a row; a few
// cycles plus one bus round trip (two when indexed) between rows.
//
// Counters, as the golden model counts them: per row, row_bytes read (plus 2 for the index
// when indexed) and row_bytes written, reported through cnt_valid at the end of the row; bytes
// of a failed read are not counted as read, nor a row with any error as written.
//
// Errors: an SLVERR/DECERR on any read or write response stops the copy after the current row
// (all its beats are still exchanged, to keep the bus consistent) with `err` set with `done`.
// Beats from the first source error on are written with WSTRB 0, so a row whose source is
// outside the memory writes nothing. The golden model range-checks whole operands before
// writing anything; the RTL matches it (DRAM and counters) when the first row already fails,
// while for a later row the rows before it have been written and counted.
//
// Handshake: `start` (one cycle, while idle) latches the fields; `done` pulses once at the end.
module em_dma #(
    parameter int BYTES = 8   // bytes per data beat
) (
    input  logic               clk,
    input  logic               rst,          // synchronous, active high

    input  logic               start,
    input  logic               src_indexed,
    input  logic               dst_indexed,
    input  logic [15:0]        rows,
    input  logic [15:0]        row_bytes,
    input  logic [31:0]        src_addr,
    input  logic [23:0]        src_stride,
    input  logic [31:0]        dst_addr,
    input  logic [23:0]        dst_stride,
    input  logic [31:0]        idx_addr,
    output logic               done,         // one cycle
    output logic               err,          // with done: an error response was seen

    output logic               cnt_valid,    // one cycle per completed row
    output logic [16:0]        cnt_rd_bytes,
    output logic [16:0]        cnt_wr_bytes,

    // AXI4 master channels (constant fields are driven in em_core)
    output logic               ar_valid,
    input  logic               ar_ready,
    output logic [31:0]        ar_addr,
    output logic [7:0]         ar_len,
    input  logic               r_valid,
    output logic               r_ready,
    input  logic [BYTES*8-1:0] r_data,
    input  logic               r_err,        // RRESP is SLVERR or DECERR
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
    input  logic               b_err         // BRESP is SLVERR or DECERR
);
    localparam int LB = $clog2(BYTES);
    localparam int DW = BYTES * 8;

    typedef enum logic [2:0] { S_IDLE, S_IDX, S_ADDR, S_ROW, S_NEXT } state_t;
    state_t state;

    // Fields, latched at start.
    logic        f_src_indexed;
    logic        f_dst_indexed;
    logic [15:0] f_rows;
    logic [15:0] f_row_bytes;
    logic [31:0] f_src_addr;
    logic [23:0] f_src_stride;
    logic [31:0] f_dst_addr;
    logic [23:0] f_dst_stride;
    logic [31:0] f_idx_addr;

    logic [15:0] r;            // current row
    logic [15:0] idx;          // its index (indexed copies)
    logic        bad;          // an error response was seen in this copy
    logic        rbad;         // ... on a read

    // ------------------------------------------------------------------ address channels
    logic        rd_cmd_valid;
    logic [31:0] rd_cmd_addr;
    logic [31:0] rd_cmd_beats;
    logic        rd_busy;
    logic        wr_cmd_valid;
    logic [31:0] wr_cmd_addr;
    logic [31:0] wr_cmd_beats;
    logic        wr_busy;

    em_axi_burst #(.BYTES(BYTES)) u_ar (
        .clk, .rst,
        .cmd_valid(rd_cmd_valid),
        .cmd_addr(rd_cmd_addr), .cmd_beats(rd_cmd_beats),
        .a_valid(ar_valid), .a_ready(ar_ready), .a_addr(ar_addr), .a_len(ar_len),
        .busy(rd_busy)
    );

    em_axi_burst #(.BYTES(BYTES)) u_aw (
        .clk, .rst,
        .cmd_valid(wr_cmd_valid),
        .cmd_addr(wr_cmd_addr), .cmd_beats(wr_cmd_beats),
        .a_valid(aw_valid), .a_ready(aw_ready), .a_addr(aw_addr), .a_len(aw_len),
        .busy(wr_busy)
    );

    // ------------------------------------------------------------------ index read
    logic [31:0]     idx_byte;       // address of idx[r]
    logic [2*DW-1:0] idx_beats;
    logic            idx_second;     // the next index beat is the second one
    logic            idx_two;        // idx[r] straddles two beats

    assign idx_byte = f_idx_addr + {15'd0, r, 1'b0};

    // ------------------------------------------------------------------ row geometry
    logic [31:0]   s_addr;            // first source byte of the row
    logic [31:0]   d_addr;            // first destination byte of the row
    logic [LB-1:0] d_lo;
    logic [LB-1:0] e_lo;              // lane of the row's last destination byte
    logic [LB-1:0] sh;                // realignment shift in bytes
    logic          skip;              // the first source beat only primes the window
    logic [31:0]   ns;                // source beats
    logic [31:0]   nd;                // destination beats
    logic [31:0]   ain;               // source-side arrivals so far (real beats, then flush)
    logic [31:0]   wout;              // destination beats sent
    logic [31:0]   w_left;            // destination beats left in the row
    logic [31:0]   w_addr;            // address of the next destination beat (for WLAST)
    logic [7:0]    w_beat;            // beat within the current write burst
    logic [31:0]   aw_count;          // write bursts issued in this row
    logic [31:0]   b_count;           // write responses received in this row
    logic [DW-1:0] prev;

    logic [15:0] s_row;
    logic [15:0] d_row;
    assign s_row = f_src_indexed ? idx : r;
    assign d_row = f_dst_indexed ? idx : r;

    // ------------------------------------------------------------------ data path
    logic          real_beat;
    logic          in_valid;
    logic [DW-1:0] in_data;
    logic          produce;
    logic          active;
    logic          row_fire;
    logic          row_end;

    assign active    = state == S_ROW && ain != nd + 32'(skip);
    assign real_beat = ain < ns;
    assign in_valid  = real_beat ? r_valid : 1'b1;  // past the source: flush beats to drain
    assign in_data   = real_beat ? r_data : '0;
    assign produce   = ain >= 32'(skip);
    assign row_fire  = active && in_valid && (!produce || w_ready);
    assign w_valid   = active && in_valid && produce;
    assign w_data    = DW'({in_data, prev} >> {sh, 3'b000});
    assign w_last    = w_left == 32'd1 || &w_addr[11:LB] || w_beat == 8'd255;

    always_comb begin
        w_strb = '1;
        if (wout == 32'd0) w_strb = w_strb & ({BYTES{1'b1}} << d_lo);
        if (wout == nd - 32'd1) w_strb = w_strb & ({BYTES{1'b1}} >> (LB'(BYTES - 1) - e_lo));
        if (rbad || (real_beat && r_err)) w_strb = '0;
    end

    always_comb begin
        r_ready = 1'b0;
        if (state == S_IDX) r_ready = 1'b1;
        else if (active && real_beat) r_ready = !produce || w_ready;
    end

    assign b_ready = 1'b1;
    assign row_end = state == S_ROW && !active && !wr_busy && !rd_busy && b_count == aw_count;

    assign cnt_rd_bytes = rbad ? 17'd0
                        : {1'b0, f_row_bytes} + ((f_src_indexed || f_dst_indexed) ? 17'd2 : 17'd0);
    assign cnt_wr_bytes = bad ? 17'd0 : {1'b0, f_row_bytes};

    always_ff @(posedge clk) begin
        if (rst) begin
            state        <= S_IDLE;
            done         <= 1'b0;
            cnt_valid    <= 1'b0;
            rd_cmd_valid <= 1'b0;
            wr_cmd_valid <= 1'b0;
        end else begin
            done         <= 1'b0;
            cnt_valid    <= 1'b0;
            rd_cmd_valid <= 1'b0;
            wr_cmd_valid <= 1'b0;
            if (b_valid) begin
                b_count <= b_count + 32'd1;
                if (b_err) bad <= 1'b1;
            end
            if (aw_valid && aw_ready) aw_count <= aw_count + 32'd1;
            case (state)
                S_IDLE: if (start) begin
                    f_src_indexed <= src_indexed;
                    f_dst_indexed <= dst_indexed;
                    f_rows        <= rows;
                    f_row_bytes   <= row_bytes;
                    f_src_addr    <= src_addr;
                    f_src_stride  <= src_stride;
                    f_dst_addr    <= dst_addr;
                    f_dst_stride  <= dst_stride;
                    f_idx_addr    <= idx_addr;
                    r             <= '0;
                    bad           <= 1'b0;
                    rbad          <= 1'b0;
                    state         <= S_NEXT;
                end
                S_NEXT: begin
                    // Start row r: read its index first if the copy is indexed.
                    if (f_src_indexed || f_dst_indexed) begin
                        rd_cmd_valid <= 1'b1;
                        rd_cmd_addr  <= {idx_byte[31:LB], {LB{1'b0}}};
                        idx_two      <= &idx_byte[LB-1:0];
                        rd_cmd_beats <= &idx_byte[LB-1:0] ? 32'd2 : 32'd1;
                        idx_second   <= 1'b0;
                        state        <= S_IDX;
                    end else begin
                        state <= S_ADDR;
                    end
                end
                S_IDX: if (r_valid) begin
                    if (idx_second) idx_beats[DW +: DW] <= r_data;
                    else            idx_beats[0 +: DW]  <= r_data;
                    idx_second <= 1'b1;
                    if (r_err) begin
                        bad  <= 1'b1;
                        rbad <= 1'b1;
                    end
                    if (!idx_two || idx_second) state <= S_ADDR;
                end
                S_ADDR: if (bad) begin
                    done  <= 1'b1;
                    err   <= 1'b1;
                    state <= S_IDLE;
                end else begin
                    // idx_beats is complete here (S_IDX has left); the index is only used when
                    // the copy is indexed.
                    s_addr   <= f_src_addr + 32'(s_row) * 32'(f_src_stride);
                    d_addr   <= f_dst_addr + 32'(d_row) * 32'(f_dst_stride);
                    state    <= S_ROW;
                    ain      <= '0;
                    wout     <= '0;
                    w_beat   <= '0;
                    aw_count <= '0;
                    b_count  <= '0;
                    // nd = 0 marks the row's first cycle in S_ROW, which derives the geometry
                    // from the addresses registered here (keeps the multiplier off that path).
                    ns       <= '0;
                    nd       <= '0;
                    skip     <= 1'b0;
                end
                S_ROW: begin
                    if (row_fire) begin
                        prev <= in_data;
                        ain  <= ain + 32'd1;
                        if (real_beat && r_err) begin
                            bad  <= 1'b1;
                            rbad <= 1'b1;
                        end
                    end
                    if (w_valid && w_ready) begin
                        wout   <= wout + 32'd1;
                        w_left <= w_left - 32'd1;
                        w_addr <= w_addr + 32'(BYTES);
                        w_beat <= w_last ? 8'd0 : w_beat + 8'd1;
                    end
                    if (row_end && nd != '0) begin
                        cnt_valid <= 1'b1;
                        if (bad || r == f_rows - 16'd1) begin
                            done  <= 1'b1;
                            err   <= bad;
                            state <= S_IDLE;
                        end else begin
                            r     <= r + 16'd1;
                            state <= S_NEXT;
                        end
                    end else if (nd == '0) begin
                        // Geometry of the row, from the addresses computed in S_ADDR.
                        d_lo   <= d_addr[LB-1:0];
                        e_lo   <= LB'(d_addr[LB-1:0] + LB'(f_row_bytes - 16'd1));
                        sh     <= s_addr[LB-1:0] - d_addr[LB-1:0];
                        skip   <= s_addr[LB-1:0] >= d_addr[LB-1:0];
                        ns     <= (32'(s_addr[LB-1:0]) + 32'(f_row_bytes) + 32'(BYTES - 1)) >> LB;
                        nd     <= (32'(d_addr[LB-1:0]) + 32'(f_row_bytes) + 32'(BYTES - 1)) >> LB;
                        w_left <= (32'(d_addr[LB-1:0]) + 32'(f_row_bytes) + 32'(BYTES - 1)) >> LB;
                        w_addr <= {d_addr[31:LB], {LB{1'b0}}};
                        rd_cmd_valid <= 1'b1;
                        rd_cmd_addr  <= {s_addr[31:LB], {LB{1'b0}}};
                        rd_cmd_beats <= (32'(s_addr[LB-1:0]) + 32'(f_row_bytes) + 32'(BYTES - 1)) >> LB;
                        wr_cmd_valid <= 1'b1;
                        wr_cmd_addr  <= {d_addr[31:LB], {LB{1'b0}}};
                        wr_cmd_beats <= (32'(d_addr[LB-1:0]) + 32'(f_row_bytes) + 32'(BYTES - 1)) >> LB;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    assign idx = 16'(idx_beats >> {idx_byte[LB-1:0], 3'b000});
endmodule
