// em_core: the accelerator's top level, first slice: control, fetch, decode, DMA, MATMUL,
// LAYERNORM.
//
//   s_axil  -> em_axil_regs (the register map of hw/regs.py)
//               |  start, soft_reset, INSN_BASE/COUNT      ^ status, errors, counters
//               v                                          |
//              em_seq (sequencer FSM) --> em_fetch --> em_decode --> em_seq dispatch
//                                     --> em_dma  (DMA_COPY execution unit)
//                                     --> em_matmul (MATMUL execution unit, non-expert)
//                                     --> em_ln_exec (LAYERNORM execution unit)
//   m_axi   <- one AXI4 master: AR/R shared by fetch and the execution units (never active at
//              the same time: rd_sel_exec from the sequencer picks fetch or the units, exec_mm
//              and exec_ln which unit), AW/W/B from the unit that exec_mm/exec_ln name
//
// The AXI4 master has address width 32, data width DATA_WIDTH (EM_AXI_DATA_WIDTH), one ID
// (ID 0 on every transaction: all are in order), full-width INCR bursts of at most 256 beats that
// never cross 4 KiB. A soft reset (CTRL bit 1) restarts the sequencer, fetch, decoder and DMA but
// keeps INSN_BASE/COUNT; it is meant for an idle or hung device, since bursts in flight are
// abandoned. `retire_valid`/`retire_pc` are a debug port: one pulse per retired instruction,
// after its writes reached DRAM (the bench compares DRAM there against the golden trace).
`include "edgemoe_config.svh"
`include "em_isa.svh"

module em_core #(
    parameter int DATA_WIDTH      = `EM_AXI_DATA_WIDTH,
    parameter int AXIL_ADDR_WIDTH = 12
) (
    input  logic                       clk,
    input  logic                       rst,              // synchronous, active high

    // AXI4-Lite slave, 32-bit data: the registers
    input  logic [AXIL_ADDR_WIDTH-1:0] s_axil_awaddr,
    input  logic                       s_axil_awvalid,
    output logic                       s_axil_awready,
    input  logic [31:0]                s_axil_wdata,
    input  logic [3:0]                 s_axil_wstrb,
    input  logic                       s_axil_wvalid,
    output logic                       s_axil_wready,
    output logic [1:0]                 s_axil_bresp,
    output logic                       s_axil_bvalid,
    input  logic                       s_axil_bready,
    input  logic [AXIL_ADDR_WIDTH-1:0] s_axil_araddr,
    input  logic                       s_axil_arvalid,
    output logic                       s_axil_arready,
    output logic [31:0]                s_axil_rdata,
    output logic [1:0]                 s_axil_rresp,
    output logic                       s_axil_rvalid,
    input  logic                       s_axil_rready,

    // AXI4 master: DRAM
    output logic                       m_axi_awid,
    output logic [31:0]                m_axi_awaddr,
    output logic [7:0]                 m_axi_awlen,
    output logic [2:0]                 m_axi_awsize,
    output logic [1:0]                 m_axi_awburst,
    output logic                       m_axi_awvalid,
    input  logic                       m_axi_awready,
    output logic [DATA_WIDTH-1:0]      m_axi_wdata,
    output logic [DATA_WIDTH/8-1:0]    m_axi_wstrb,
    output logic                       m_axi_wlast,
    output logic                       m_axi_wvalid,
    input  logic                       m_axi_wready,
    input  logic                       m_axi_bid,
    input  logic [1:0]                 m_axi_bresp,
    input  logic                       m_axi_bvalid,
    output logic                       m_axi_bready,
    output logic                       m_axi_arid,
    output logic [31:0]                m_axi_araddr,
    output logic [7:0]                 m_axi_arlen,
    output logic [2:0]                 m_axi_arsize,
    output logic [1:0]                 m_axi_arburst,
    output logic                       m_axi_arvalid,
    input  logic                       m_axi_arready,
    input  logic                       m_axi_rid,
    input  logic [DATA_WIDTH-1:0]      m_axi_rdata,
    input  logic [1:0]                 m_axi_rresp,
    input  logic                       m_axi_rlast,      // beats are counted instead
    input  logic                       m_axi_rvalid,
    output logic                       m_axi_rready,

    // Debug: instruction retirement
    output logic                       retire_valid,
    output logic [31:0]                retire_pc
);
    localparam int BYTES = DATA_WIDTH / 8;
    localparam logic [1:0] BURST_INCR = 2'b01;

    logic core_rst;

    // ------------------------------------------------------------------ registers
    logic        start;
    logic        soft_reset;
    logic [31:0] insn_base;
    logic [31:0] insn_count;
    logic        busy;
    logic        done;
    logic        error;
    logic [31:0] error_code;
    logic [31:0] error_pc;
    logic [63:0] cycles;
    logic [63:0] dram_rd_bytes;
    logic [63:0] dram_wr_bytes;
    logic [31:0] insn_retired;

    assign core_rst = rst || soft_reset;

    em_axil_regs #(.ADDR_WIDTH(AXIL_ADDR_WIDTH)) u_regs (
        .clk, .rst,
        .s_axil_awaddr, .s_axil_awvalid, .s_axil_awready, .s_axil_wdata, .s_axil_wstrb,
        .s_axil_wvalid, .s_axil_wready, .s_axil_bresp, .s_axil_bvalid, .s_axil_bready,
        .s_axil_araddr, .s_axil_arvalid, .s_axil_arready, .s_axil_rdata, .s_axil_rresp,
        .s_axil_rvalid, .s_axil_rready,
        .start, .soft_reset, .insn_base, .insn_count,
        .busy, .done, .error, .error_code, .error_pc, .cycles,
        .mac_cycles,
        .dram_rd_bytes, .dram_wr_bytes, .insn_retired
    );

    // ------------------------------------------------------------------ sequencer
    logic        fetch_start;
    logic [31:0] fetch_addr;
    logic [31:0] fetch_pc;
    logic        fetch_err;
    logic        dec_valid;
    logic        dec_ready;
    logic        illegal_opcode;
    logic        illegal_field;
    logic        is_end;
    logic        is_sync;
    logic        is_dma_copy;
    logic        dma_start;
    logic        dma_done;
    logic        dma_err;
    logic        cnt_valid;
    logic [16:0] cnt_rd_bytes;
    logic [16:0] cnt_wr_bytes;
    logic        rd_sel_exec;
    logic        is_matmul;
    logic        mm_start;
    logic        mm_done;
    logic        mm_err;
    logic        mm_unsupported;
    logic [63:0] mm_rd_bytes;
    logic [63:0] mm_wr_bytes;
    logic        mac_busy;
    logic [63:0] mac_cycles;
    logic        exec_mm;
    logic        exec_ln;
    logic        is_layernorm;
    logic        ln_start;
    logic        ln_done;
    logic        ln_err;
    logic        ln_illegal;
    logic        ln_unsupported;
    logic [63:0] ln_rd_bytes;
    logic [63:0] ln_wr_bytes;
    logic        ln_x16, ln_y16;
    logic [$bits(`EM_LAYERNORM_M_HI)-1:0]        ln_m;
    logic [$bits(`EM_LAYERNORM_D_HI)-1:0]        ln_d;
    logic [31:0]                                 ln_x_addr, ln_y_addr, ln_p_addr;
    logic [$bits(`EM_LAYERNORM_X_STRIDE_HI)-1:0] ln_x_stride;
    logic [$bits(`EM_LAYERNORM_Y_STRIDE_HI)-1:0] ln_y_stride;
    logic        mm_x16, mm_y16, mm_gelu, mm_residual, mm_expert, mm_gather_x, mm_scatter_acc;
    logic [$bits(`EM_MATMUL_M_HI)-1:0]         mm_m;
    logic [$bits(`EM_MATMUL_K_HI)-1:0]         mm_k;
    logic [$bits(`EM_MATMUL_N_HI)-1:0]         mm_n;
    logic [31:0]                               mm_x_addr, mm_w_addr, mm_p_addr, mm_y_addr;
    logic [31:0]                               mm_r_addr;
    logic [$bits(`EM_MATMUL_X_STRIDE_HI)-1:0]  mm_x_stride;
    logic [$bits(`EM_MATMUL_Y_STRIDE_HI)-1:0]  mm_y_stride;
    logic [$bits(`EM_MATMUL_GELU_FRAC_HI)-1:0] mm_gelu_frac;

    em_seq u_seq (
        .clk, .rst(core_rst),
        .start, .insn_base, .insn_count,
        .busy, .done, .error, .error_code, .error_pc, .cycles, .dram_rd_bytes, .dram_wr_bytes,
        .insn_retired,
        .fetch_start, .fetch_addr, .fetch_pc, .fetch_err,
        .dec_valid, .dec_ready, .illegal_opcode, .illegal_field, .is_end, .is_sync, .is_dma_copy,
        .is_matmul, .mm_expert(mm_expert || mm_gather_x || mm_scatter_acc),
        .dma_start, .dma_done, .dma_err, .cnt_valid, .cnt_rd_bytes, .cnt_wr_bytes,
        .mm_start, .mm_done, .mm_err, .mm_unsupported, .mm_rd_bytes, .mm_wr_bytes, .mac_busy,
        .mac_cycles, .exec_mm,
        .is_layernorm, .ln_start, .ln_done, .ln_err, .ln_illegal, .ln_unsupported,
        .ln_rd_bytes, .ln_wr_bytes, .exec_ln,
        .rd_sel_exec, .retire_valid, .retire_pc
    );

    // ------------------------------------------------------------------ fetch and decode
    logic                     f_ar_valid;
    logic [31:0]              f_ar_addr;
    logic [7:0]               f_ar_len;
    logic                     f_r_ready;
    logic                     f_valid;
    logic                     f_ready;
    logic [`EM_INSN_BITS-1:0] f_insn;
    logic [31:0]              f_pc;

    em_fetch #(.BYTES(BYTES)) u_fetch (
        .clk, .rst(core_rst),
        .start(fetch_start), .addr(fetch_addr), .pc(fetch_pc),
        .ar_valid(f_ar_valid), .ar_ready(m_axi_arready && !rd_sel_exec),
        .ar_addr(f_ar_addr), .ar_len(f_ar_len),
        .r_valid(m_axi_rvalid && !rd_sel_exec), .r_ready(f_r_ready),
        .r_data(m_axi_rdata), .r_err(m_axi_rresp[1]),
        .out_valid(f_valid), .out_ready(f_ready), .out_insn(f_insn), .out_pc(f_pc),
        .err(fetch_err)
    );

    // Only the DMA_COPY, MATMUL and LAYERNORM fields are used so far; the other units' fields are left
    // open here.
    /* verilator lint_off PINCONNECTEMPTY */
    logic        dma_src_indexed;
    logic        dma_dst_indexed;
    logic [15:0] dma_rows;
    logic [15:0] dma_row_bytes;
    logic [31:0] dma_src_addr;
    logic [23:0] dma_src_stride;
    logic [31:0] dma_dst_addr;
    logic [23:0] dma_dst_stride;
    logic [31:0] dma_idx_addr;

    em_decode #(.PC_WIDTH(32)) u_decode (
        .clk, .rst(core_rst),
        .in_valid(f_valid), .in_ready(f_ready), .in_insn(f_insn), .in_pc(f_pc),
        .out_valid(dec_valid), .out_ready(dec_ready), .out_pc(),
        .illegal_opcode, .illegal_field,
        .is_end, .is_sync, .is_dma_copy,
        .is_matmul, .is_attn_qk(), .is_attn_av(), .is_layernorm, .is_gate_topk(),
        .is_expert_loop(),
        .dma_copy_src_indexed(dma_src_indexed), .dma_copy_dst_indexed(dma_dst_indexed),
        .dma_copy_rows(dma_rows), .dma_copy_row_bytes(dma_row_bytes),
        .dma_copy_src_addr(dma_src_addr), .dma_copy_src_stride(dma_src_stride),
        .dma_copy_dst_addr(dma_dst_addr), .dma_copy_dst_stride(dma_dst_stride),
        .dma_copy_idx_addr(dma_idx_addr),
        .matmul_x16(mm_x16), .matmul_y16(mm_y16), .matmul_gelu(mm_gelu),
        .matmul_residual(mm_residual), .matmul_expert(mm_expert), .matmul_gather_x(mm_gather_x),
        .matmul_scatter_acc(mm_scatter_acc), .matmul_m(mm_m), .matmul_k(mm_k), .matmul_n(mm_n),
        .matmul_x_addr(mm_x_addr), .matmul_x_stride(mm_x_stride), .matmul_w_addr(mm_w_addr),
        .matmul_p_addr(mm_p_addr), .matmul_y_addr(mm_y_addr), .matmul_y_stride(mm_y_stride),
        .matmul_r_addr(mm_r_addr), .matmul_gelu_frac(mm_gelu_frac),
        .attn_qk_x16(), .attn_qk_m(), .attn_qk_n(), .attn_qk_d(), .attn_qk_q_addr(),
        .attn_qk_q_stride(), .attn_qk_k_addr(), .attn_qk_k_stride(), .attn_qk_z_addr(),
        .attn_qk_stats_addr(), .attn_qk_mult(), .attn_qk_shift(),
        .attn_av_x16(), .attn_av_y16(), .attn_av_m(), .attn_av_n(), .attn_av_d(),
        .attn_av_z_addr(), .attn_av_stats_addr(), .attn_av_v_addr(), .attn_av_v_stride(),
        .attn_av_o_addr(), .attn_av_o_stride(), .attn_av_mult(), .attn_av_shift(),
        .layernorm_x16(ln_x16), .layernorm_y16(ln_y16), .layernorm_m(ln_m), .layernorm_d(ln_d),
        .layernorm_x_addr(ln_x_addr), .layernorm_x_stride(ln_x_stride),
        .layernorm_y_addr(ln_y_addr), .layernorm_y_stride(ln_y_stride),
        .layernorm_p_addr(ln_p_addr),
        .gate_topk_m(), .gate_topk_e(), .gate_topk_k(), .gate_topk_z_addr(),
        .gate_topk_route_addr(),
        .expert_loop_e(), .expert_loop_body(), .expert_loop_capacity(),
        .expert_loop_route_addr(), .expert_loop_expert_stride()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    // ------------------------------------------------------------------ DMA engine
    logic        dma_own;     // the DMA owns the AXI data channels
    assign dma_own = !exec_mm && !exec_ln;
    logic        d_ar_valid;
    logic [31:0] d_ar_addr;
    logic [7:0]  d_ar_len;
    logic        d_r_ready;
    logic        d_aw_valid;
    logic [31:0] d_aw_addr;
    logic [7:0]  d_aw_len;
    logic        d_w_valid;
    logic [DATA_WIDTH-1:0] d_w_data;
    logic [BYTES-1:0] d_w_strb;
    logic        d_w_last;
    logic        d_b_ready;

    em_dma #(.BYTES(BYTES)) u_dma (
        .clk, .rst(core_rst),
        .start(dma_start),
        .src_indexed(dma_src_indexed), .dst_indexed(dma_dst_indexed), .rows(dma_rows),
        .row_bytes(dma_row_bytes), .src_addr(dma_src_addr), .src_stride(dma_src_stride),
        .dst_addr(dma_dst_addr), .dst_stride(dma_dst_stride), .idx_addr(dma_idx_addr),
        .done(dma_done), .err(dma_err),
        .cnt_valid, .cnt_rd_bytes, .cnt_wr_bytes,
        .ar_valid(d_ar_valid), .ar_ready(m_axi_arready && rd_sel_exec && dma_own),
        .ar_addr(d_ar_addr), .ar_len(d_ar_len),
        .r_valid(m_axi_rvalid && rd_sel_exec && dma_own), .r_ready(d_r_ready),
        .r_data(m_axi_rdata), .r_err(m_axi_rresp[1]),
        .aw_valid(d_aw_valid), .aw_ready(m_axi_awready && dma_own),
        .aw_addr(d_aw_addr), .aw_len(d_aw_len),
        .w_valid(d_w_valid), .w_ready(m_axi_wready && dma_own), .w_data(d_w_data),
        .w_strb(d_w_strb), .w_last(d_w_last),
        .b_valid(m_axi_bvalid && dma_own), .b_ready(d_b_ready), .b_err(m_axi_bresp[1])
    );

    // ------------------------------------------------------------------ MATMUL unit
    logic              mm_ar_valid;
    logic [31:0]       mm_ar_addr;
    logic [7:0]        mm_ar_len;
    logic              mm_r_ready;
    logic              mm_aw_valid;
    logic [31:0]       mm_aw_addr;
    logic [7:0]        mm_aw_len;
    logic              mm_w_valid;
    logic [DATA_WIDTH-1:0] mm_w_data;
    logic [BYTES-1:0]  mm_w_strb;
    logic              mm_w_last;
    logic              mm_b_ready;

    em_matmul #(.BYTES(BYTES)) u_matmul (
        .clk, .rst(core_rst),
        .start(mm_start), .x16(mm_x16), .y16(mm_y16), .gelu(mm_gelu), .residual(mm_residual),
        .m(mm_m), .k(mm_k), .n(mm_n), .x_addr(mm_x_addr), .x_stride(mm_x_stride),
        .w_addr(mm_w_addr), .p_addr(mm_p_addr), .y_addr(mm_y_addr), .y_stride(mm_y_stride),
        .r_addr(mm_r_addr), .gelu_frac(mm_gelu_frac),
        .done(mm_done), .err(mm_err), .unsupported(mm_unsupported),
        .cnt_rd_bytes(mm_rd_bytes), .cnt_wr_bytes(mm_wr_bytes), .mac_busy,
        .ar_valid(mm_ar_valid), .ar_ready(m_axi_arready && rd_sel_exec && exec_mm),
        .ar_addr(mm_ar_addr), .ar_len(mm_ar_len),
        .r_valid(m_axi_rvalid && rd_sel_exec && exec_mm), .r_ready(mm_r_ready),
        .r_data(m_axi_rdata), .r_err(m_axi_rresp[1]),
        .aw_valid(mm_aw_valid), .aw_ready(m_axi_awready && exec_mm),
        .aw_addr(mm_aw_addr), .aw_len(mm_aw_len),
        .w_valid(mm_w_valid), .w_ready(m_axi_wready && exec_mm), .w_data(mm_w_data),
        .w_strb(mm_w_strb), .w_last(mm_w_last),
        .b_valid(m_axi_bvalid && exec_mm), .b_ready(mm_b_ready), .b_err(m_axi_bresp[1])
    );

    // ------------------------------------------------------------------ LAYERNORM unit
    logic              ln_ar_valid;
    logic [31:0]       ln_ar_addr;
    logic [7:0]        ln_ar_len;
    logic              ln_r_ready;
    logic              ln_aw_valid;
    logic [31:0]       ln_aw_addr;
    logic [7:0]        ln_aw_len;
    logic              ln_w_valid;
    logic [DATA_WIDTH-1:0] ln_w_data;
    logic [BYTES-1:0]  ln_w_strb;
    logic              ln_w_last;
    logic              ln_b_ready;

    em_ln_exec #(.BYTES(BYTES)) u_ln_exec (
        .clk, .rst(core_rst),
        .start(ln_start), .x16(ln_x16), .y16(ln_y16), .m(ln_m), .d(ln_d),
        .x_addr(ln_x_addr), .x_stride(ln_x_stride), .y_addr(ln_y_addr), .y_stride(ln_y_stride),
        .p_addr(ln_p_addr),
        .done(ln_done), .err(ln_err), .illegal(ln_illegal), .unsupported(ln_unsupported),
        .cnt_rd_bytes(ln_rd_bytes), .cnt_wr_bytes(ln_wr_bytes),
        .ar_valid(ln_ar_valid), .ar_ready(m_axi_arready && rd_sel_exec && exec_ln),
        .ar_addr(ln_ar_addr), .ar_len(ln_ar_len),
        .r_valid(m_axi_rvalid && rd_sel_exec && exec_ln), .r_ready(ln_r_ready),
        .r_data(m_axi_rdata), .r_err(m_axi_rresp[1]),
        .aw_valid(ln_aw_valid), .aw_ready(m_axi_awready && exec_ln),
        .aw_addr(ln_aw_addr), .aw_len(ln_aw_len),
        .w_valid(ln_w_valid), .w_ready(m_axi_wready && exec_ln), .w_data(ln_w_data),
        .w_strb(ln_w_strb), .w_last(ln_w_last),
        .b_valid(m_axi_bvalid && exec_ln), .b_ready(ln_b_ready), .b_err(m_axi_bresp[1])
    );

    // ------------------------------------------------------------------ AXI write owner
    assign m_axi_awvalid = exec_ln ? ln_aw_valid : exec_mm ? mm_aw_valid : d_aw_valid;
    assign m_axi_awaddr  = exec_ln ? ln_aw_addr : exec_mm ? mm_aw_addr : d_aw_addr;
    assign m_axi_awlen   = exec_ln ? ln_aw_len : exec_mm ? mm_aw_len : d_aw_len;
    assign m_axi_wvalid  = exec_ln ? ln_w_valid : exec_mm ? mm_w_valid : d_w_valid;
    assign m_axi_wdata   = exec_ln ? ln_w_data : exec_mm ? mm_w_data : d_w_data;
    assign m_axi_wstrb   = exec_ln ? ln_w_strb : exec_mm ? mm_w_strb : d_w_strb;
    assign m_axi_wlast   = exec_ln ? ln_w_last : exec_mm ? mm_w_last : d_w_last;
    assign m_axi_bready  = exec_ln ? ln_b_ready : exec_mm ? mm_b_ready : d_b_ready;

    // ------------------------------------------------------------------ AXI read owner
    assign m_axi_arvalid = !rd_sel_exec ? f_ar_valid
                         : exec_ln ? ln_ar_valid : exec_mm ? mm_ar_valid : d_ar_valid;
    assign m_axi_araddr  = !rd_sel_exec ? f_ar_addr
                         : exec_ln ? ln_ar_addr : exec_mm ? mm_ar_addr : d_ar_addr;
    assign m_axi_arlen   = !rd_sel_exec ? f_ar_len
                         : exec_ln ? ln_ar_len : exec_mm ? mm_ar_len : d_ar_len;
    assign m_axi_rready  = !rd_sel_exec ? f_r_ready
                         : exec_ln ? ln_r_ready : exec_mm ? mm_r_ready : d_r_ready;
    assign m_axi_arsize  = 3'($clog2(BYTES));
    assign m_axi_awsize  = 3'($clog2(BYTES));
    assign m_axi_arburst = BURST_INCR;
    assign m_axi_arid    = 1'b0;
    assign m_axi_awid    = 1'b0;
    assign m_axi_awburst = BURST_INCR;

    // RLAST carries nothing the beat counters do not know, the IDs are all 0; RRESP/BRESP bit 0 tells OKAY from
    // EXOKAY and SLVERR from DECERR, and both errors are DRAM_RANGE.
    /* verilator lint_off UNUSEDSIGNAL */
    logic unused;
    /* verilator lint_on UNUSEDSIGNAL */
    assign unused = ^{m_axi_rlast, m_axi_rid, m_axi_bid, m_axi_rresp[0], m_axi_bresp[0]};
endmodule
