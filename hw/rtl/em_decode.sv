// em_decode: the instruction decoder, one 256-bit word in, its opcode, fields and legality out.
//
// Every field slice, legal range and reserved-bit boundary comes from the generated em_isa.svh
// (hw/isa.py is the one source), so this file names fields but never restates a position. The
// legality rules are exactly those of isa.decode and isa.check, in the same precedence:
//
//   illegal_opcode  the opcode byte is not in the ISA table (ERROR_CODE ILLEGAL_OPCODE)
//   illegal_field   known opcode, but a bit above the format's used bits is set, a field lies
//                   outside [_LO, _HI], or GATE_TOPK has k > e (ERROR_CODE ILLEGAL_FIELD)
//
// Outputs: one is_<op> flag per opcode (one-hot; still set under illegal_field, so the
// sequencer's error path knows what it was decoding; all zero under illegal_opcode), the two
// error flags, and every field of every format as its own port <op>_<field>, named as in
// hw/isa.py. The field ports are plain slices of the registered word: they cost no logic, each
// execution unit takes its own group, and a field is meaningful only while is_<op> is set and
// neither error flag is. The instruction's index rides along (in_pc -> out_pc) so that the error
// path can report ERROR_PC without a side queue.
//
// Handshake: valid/ready, one register stage holding the raw word and the decoded flags, so the
// range comparators sit between the fetch buffer and this register and nothing of the decode is
// on the sequencer's paths. One instruction per cycle; in_ready = !out_valid || out_ready
// (combinational from out_ready, one gate); latency one cycle.
`include "em_isa.svh"

module em_decode #(
    parameter int PC_WIDTH = 32
) (
    input  logic                     clk,
    input  logic                     rst,        // synchronous, active high

    input  logic                     in_valid,
    output logic                     in_ready,
    input  logic [`EM_INSN_BITS-1:0] in_insn,
    input  logic [PC_WIDTH-1:0]      in_pc,      // instruction index, passed through

    output logic                     out_valid,
    input  logic                     out_ready,
    output logic [PC_WIDTH-1:0]      out_pc,
    output logic                     illegal_opcode,
    output logic                     illegal_field,
    // Opcode, one-hot.
    output logic                     is_end,
    output logic                     is_sync,
    output logic                     is_dma_copy,
    output logic                     is_matmul,
    output logic                     is_attn_qk,
    output logic                     is_attn_av,
    output logic                     is_layernorm,
    output logic                     is_gate_topk,
    output logic                     is_expert_loop,
    // Fields, <op>_<field>, valid while is_<op> && !illegal_field.
    // DMA_COPY
    output logic [$bits(`EM_DMA_COPY_SRC_INDEXED_HI)-1:0] dma_copy_src_indexed,
    output logic [$bits(`EM_DMA_COPY_DST_INDEXED_HI)-1:0] dma_copy_dst_indexed,
    output logic [$bits(`EM_DMA_COPY_ROWS_HI)-1:0] dma_copy_rows,
    output logic [$bits(`EM_DMA_COPY_ROW_BYTES_HI)-1:0] dma_copy_row_bytes,
    output logic [$bits(`EM_DMA_COPY_SRC_ADDR_HI)-1:0] dma_copy_src_addr,
    output logic [$bits(`EM_DMA_COPY_SRC_STRIDE_HI)-1:0] dma_copy_src_stride,
    output logic [$bits(`EM_DMA_COPY_DST_ADDR_HI)-1:0] dma_copy_dst_addr,
    output logic [$bits(`EM_DMA_COPY_DST_STRIDE_HI)-1:0] dma_copy_dst_stride,
    output logic [$bits(`EM_DMA_COPY_IDX_ADDR_HI)-1:0] dma_copy_idx_addr,
    // MATMUL
    output logic [$bits(`EM_MATMUL_X16_HI)-1:0] matmul_x16,
    output logic [$bits(`EM_MATMUL_Y16_HI)-1:0] matmul_y16,
    output logic [$bits(`EM_MATMUL_GELU_HI)-1:0] matmul_gelu,
    output logic [$bits(`EM_MATMUL_RESIDUAL_HI)-1:0] matmul_residual,
    output logic [$bits(`EM_MATMUL_EXPERT_HI)-1:0] matmul_expert,
    output logic [$bits(`EM_MATMUL_GATHER_X_HI)-1:0] matmul_gather_x,
    output logic [$bits(`EM_MATMUL_SCATTER_ACC_HI)-1:0] matmul_scatter_acc,
    output logic [$bits(`EM_MATMUL_M_HI)-1:0] matmul_m,
    output logic [$bits(`EM_MATMUL_K_HI)-1:0] matmul_k,
    output logic [$bits(`EM_MATMUL_N_HI)-1:0] matmul_n,
    output logic [$bits(`EM_MATMUL_X_ADDR_HI)-1:0] matmul_x_addr,
    output logic [$bits(`EM_MATMUL_X_STRIDE_HI)-1:0] matmul_x_stride,
    output logic [$bits(`EM_MATMUL_W_ADDR_HI)-1:0] matmul_w_addr,
    output logic [$bits(`EM_MATMUL_P_ADDR_HI)-1:0] matmul_p_addr,
    output logic [$bits(`EM_MATMUL_Y_ADDR_HI)-1:0] matmul_y_addr,
    output logic [$bits(`EM_MATMUL_Y_STRIDE_HI)-1:0] matmul_y_stride,
    output logic [$bits(`EM_MATMUL_R_ADDR_HI)-1:0] matmul_r_addr,
    output logic [$bits(`EM_MATMUL_GELU_FRAC_HI)-1:0] matmul_gelu_frac,
    // ATTN_QK
    output logic [$bits(`EM_ATTN_QK_X16_HI)-1:0] attn_qk_x16,
    output logic [$bits(`EM_ATTN_QK_M_HI)-1:0] attn_qk_m,
    output logic [$bits(`EM_ATTN_QK_N_HI)-1:0] attn_qk_n,
    output logic [$bits(`EM_ATTN_QK_D_HI)-1:0] attn_qk_d,
    output logic [$bits(`EM_ATTN_QK_Q_ADDR_HI)-1:0] attn_qk_q_addr,
    output logic [$bits(`EM_ATTN_QK_Q_STRIDE_HI)-1:0] attn_qk_q_stride,
    output logic [$bits(`EM_ATTN_QK_K_ADDR_HI)-1:0] attn_qk_k_addr,
    output logic [$bits(`EM_ATTN_QK_K_STRIDE_HI)-1:0] attn_qk_k_stride,
    output logic [$bits(`EM_ATTN_QK_Z_ADDR_HI)-1:0] attn_qk_z_addr,
    output logic [$bits(`EM_ATTN_QK_STATS_ADDR_HI)-1:0] attn_qk_stats_addr,
    output logic [$bits(`EM_ATTN_QK_MULT_HI)-1:0] attn_qk_mult,
    output logic [$bits(`EM_ATTN_QK_SHIFT_HI)-1:0] attn_qk_shift,
    // ATTN_AV
    output logic [$bits(`EM_ATTN_AV_X16_HI)-1:0] attn_av_x16,
    output logic [$bits(`EM_ATTN_AV_Y16_HI)-1:0] attn_av_y16,
    output logic [$bits(`EM_ATTN_AV_M_HI)-1:0] attn_av_m,
    output logic [$bits(`EM_ATTN_AV_N_HI)-1:0] attn_av_n,
    output logic [$bits(`EM_ATTN_AV_D_HI)-1:0] attn_av_d,
    output logic [$bits(`EM_ATTN_AV_Z_ADDR_HI)-1:0] attn_av_z_addr,
    output logic [$bits(`EM_ATTN_AV_STATS_ADDR_HI)-1:0] attn_av_stats_addr,
    output logic [$bits(`EM_ATTN_AV_V_ADDR_HI)-1:0] attn_av_v_addr,
    output logic [$bits(`EM_ATTN_AV_V_STRIDE_HI)-1:0] attn_av_v_stride,
    output logic [$bits(`EM_ATTN_AV_O_ADDR_HI)-1:0] attn_av_o_addr,
    output logic [$bits(`EM_ATTN_AV_O_STRIDE_HI)-1:0] attn_av_o_stride,
    output logic [$bits(`EM_ATTN_AV_MULT_HI)-1:0] attn_av_mult,
    output logic [$bits(`EM_ATTN_AV_SHIFT_HI)-1:0] attn_av_shift,
    // LAYERNORM
    output logic [$bits(`EM_LAYERNORM_X16_HI)-1:0] layernorm_x16,
    output logic [$bits(`EM_LAYERNORM_Y16_HI)-1:0] layernorm_y16,
    output logic [$bits(`EM_LAYERNORM_M_HI)-1:0] layernorm_m,
    output logic [$bits(`EM_LAYERNORM_D_HI)-1:0] layernorm_d,
    output logic [$bits(`EM_LAYERNORM_X_ADDR_HI)-1:0] layernorm_x_addr,
    output logic [$bits(`EM_LAYERNORM_X_STRIDE_HI)-1:0] layernorm_x_stride,
    output logic [$bits(`EM_LAYERNORM_Y_ADDR_HI)-1:0] layernorm_y_addr,
    output logic [$bits(`EM_LAYERNORM_Y_STRIDE_HI)-1:0] layernorm_y_stride,
    output logic [$bits(`EM_LAYERNORM_P_ADDR_HI)-1:0] layernorm_p_addr,
    // GATE_TOPK
    output logic [$bits(`EM_GATE_TOPK_M_HI)-1:0] gate_topk_m,
    output logic [$bits(`EM_GATE_TOPK_E_HI)-1:0] gate_topk_e,
    output logic [$bits(`EM_GATE_TOPK_K_HI)-1:0] gate_topk_k,
    output logic [$bits(`EM_GATE_TOPK_Z_ADDR_HI)-1:0] gate_topk_z_addr,
    output logic [$bits(`EM_GATE_TOPK_ROUTE_ADDR_HI)-1:0] gate_topk_route_addr,
    // EXPERT_LOOP
    output logic [$bits(`EM_EXPERT_LOOP_E_HI)-1:0] expert_loop_e,
    output logic [$bits(`EM_EXPERT_LOOP_BODY_HI)-1:0] expert_loop_body,
    output logic [$bits(`EM_EXPERT_LOOP_CAPACITY_HI)-1:0] expert_loop_capacity,
    output logic [$bits(`EM_EXPERT_LOOP_ROUTE_ADDR_HI)-1:0] expert_loop_route_addr,
    output logic [$bits(`EM_EXPERT_LOOP_EXPERT_STRIDE_HI)-1:0] expert_loop_expert_stride
);
    // ------------------------------------------------------------------ legality, per format
    // Compared at 64 bits, wider than any field (the widest is an address, 32 bits), inside a
    // function, so that bounds which cannot fail for a field's width (lo = 0, hi = all ones) are
    // not constant comparisons at the call site; synthesis drops them.
    function automatic logic in_range(input logic [63:0] v, input logic [63:0] lo,
                                      input logic [63:0] hi);
        in_range = v >= lo && v <= hi;
    endfunction

    logic [`EM_INSN_BITS-1:0] w;  // a short name for the many macro calls below
    assign w = in_insn;

    logic ok_end;
    logic ok_sync;
    logic ok_dma_copy;
    logic ok_matmul;
    logic ok_attn_qk;
    logic ok_attn_av;
    logic ok_layernorm;
    logic ok_gate_topk;
    logic ok_expert_loop;

    // Reserved bits first, then every field, as isa.decode: the word is legal for its format iff
    // all hold. A format using all bits shifts by EM_INSN_BITS, which leaves zero: always clear.
    assign ok_end = (w >> `EM_END_USED_BITS) == '0;
    assign ok_sync = (w >> `EM_SYNC_USED_BITS) == '0;
    assign ok_dma_copy = (w >> `EM_DMA_COPY_USED_BITS) == '0
        && in_range(64'(`EM_DMA_COPY_SRC_INDEXED(w)),
                    64'(`EM_DMA_COPY_SRC_INDEXED_LO), 64'(`EM_DMA_COPY_SRC_INDEXED_HI))
        && in_range(64'(`EM_DMA_COPY_DST_INDEXED(w)),
                    64'(`EM_DMA_COPY_DST_INDEXED_LO), 64'(`EM_DMA_COPY_DST_INDEXED_HI))
        && in_range(64'(`EM_DMA_COPY_ROWS(w)),
                    64'(`EM_DMA_COPY_ROWS_LO), 64'(`EM_DMA_COPY_ROWS_HI))
        && in_range(64'(`EM_DMA_COPY_ROW_BYTES(w)),
                    64'(`EM_DMA_COPY_ROW_BYTES_LO), 64'(`EM_DMA_COPY_ROW_BYTES_HI))
        && in_range(64'(`EM_DMA_COPY_SRC_ADDR(w)),
                    64'(`EM_DMA_COPY_SRC_ADDR_LO), 64'(`EM_DMA_COPY_SRC_ADDR_HI))
        && in_range(64'(`EM_DMA_COPY_SRC_STRIDE(w)),
                    64'(`EM_DMA_COPY_SRC_STRIDE_LO), 64'(`EM_DMA_COPY_SRC_STRIDE_HI))
        && in_range(64'(`EM_DMA_COPY_DST_ADDR(w)),
                    64'(`EM_DMA_COPY_DST_ADDR_LO), 64'(`EM_DMA_COPY_DST_ADDR_HI))
        && in_range(64'(`EM_DMA_COPY_DST_STRIDE(w)),
                    64'(`EM_DMA_COPY_DST_STRIDE_LO), 64'(`EM_DMA_COPY_DST_STRIDE_HI))
        && in_range(64'(`EM_DMA_COPY_IDX_ADDR(w)),
                    64'(`EM_DMA_COPY_IDX_ADDR_LO), 64'(`EM_DMA_COPY_IDX_ADDR_HI));
    assign ok_matmul = (w >> `EM_MATMUL_USED_BITS) == '0
        && in_range(64'(`EM_MATMUL_X16(w)),
                    64'(`EM_MATMUL_X16_LO), 64'(`EM_MATMUL_X16_HI))
        && in_range(64'(`EM_MATMUL_Y16(w)),
                    64'(`EM_MATMUL_Y16_LO), 64'(`EM_MATMUL_Y16_HI))
        && in_range(64'(`EM_MATMUL_GELU(w)),
                    64'(`EM_MATMUL_GELU_LO), 64'(`EM_MATMUL_GELU_HI))
        && in_range(64'(`EM_MATMUL_RESIDUAL(w)),
                    64'(`EM_MATMUL_RESIDUAL_LO), 64'(`EM_MATMUL_RESIDUAL_HI))
        && in_range(64'(`EM_MATMUL_EXPERT(w)),
                    64'(`EM_MATMUL_EXPERT_LO), 64'(`EM_MATMUL_EXPERT_HI))
        && in_range(64'(`EM_MATMUL_GATHER_X(w)),
                    64'(`EM_MATMUL_GATHER_X_LO), 64'(`EM_MATMUL_GATHER_X_HI))
        && in_range(64'(`EM_MATMUL_SCATTER_ACC(w)),
                    64'(`EM_MATMUL_SCATTER_ACC_LO), 64'(`EM_MATMUL_SCATTER_ACC_HI))
        && in_range(64'(`EM_MATMUL_M(w)),
                    64'(`EM_MATMUL_M_LO), 64'(`EM_MATMUL_M_HI))
        && in_range(64'(`EM_MATMUL_K(w)),
                    64'(`EM_MATMUL_K_LO), 64'(`EM_MATMUL_K_HI))
        && in_range(64'(`EM_MATMUL_N(w)),
                    64'(`EM_MATMUL_N_LO), 64'(`EM_MATMUL_N_HI))
        && in_range(64'(`EM_MATMUL_X_ADDR(w)),
                    64'(`EM_MATMUL_X_ADDR_LO), 64'(`EM_MATMUL_X_ADDR_HI))
        && in_range(64'(`EM_MATMUL_X_STRIDE(w)),
                    64'(`EM_MATMUL_X_STRIDE_LO), 64'(`EM_MATMUL_X_STRIDE_HI))
        && in_range(64'(`EM_MATMUL_W_ADDR(w)),
                    64'(`EM_MATMUL_W_ADDR_LO), 64'(`EM_MATMUL_W_ADDR_HI))
        && in_range(64'(`EM_MATMUL_P_ADDR(w)),
                    64'(`EM_MATMUL_P_ADDR_LO), 64'(`EM_MATMUL_P_ADDR_HI))
        && in_range(64'(`EM_MATMUL_Y_ADDR(w)),
                    64'(`EM_MATMUL_Y_ADDR_LO), 64'(`EM_MATMUL_Y_ADDR_HI))
        && in_range(64'(`EM_MATMUL_Y_STRIDE(w)),
                    64'(`EM_MATMUL_Y_STRIDE_LO), 64'(`EM_MATMUL_Y_STRIDE_HI))
        && in_range(64'(`EM_MATMUL_R_ADDR(w)),
                    64'(`EM_MATMUL_R_ADDR_LO), 64'(`EM_MATMUL_R_ADDR_HI))
        && in_range(64'(`EM_MATMUL_GELU_FRAC(w)),
                    64'(`EM_MATMUL_GELU_FRAC_LO), 64'(`EM_MATMUL_GELU_FRAC_HI));
    assign ok_attn_qk = (w >> `EM_ATTN_QK_USED_BITS) == '0
        && in_range(64'(`EM_ATTN_QK_X16(w)),
                    64'(`EM_ATTN_QK_X16_LO), 64'(`EM_ATTN_QK_X16_HI))
        && in_range(64'(`EM_ATTN_QK_M(w)),
                    64'(`EM_ATTN_QK_M_LO), 64'(`EM_ATTN_QK_M_HI))
        && in_range(64'(`EM_ATTN_QK_N(w)),
                    64'(`EM_ATTN_QK_N_LO), 64'(`EM_ATTN_QK_N_HI))
        && in_range(64'(`EM_ATTN_QK_D(w)),
                    64'(`EM_ATTN_QK_D_LO), 64'(`EM_ATTN_QK_D_HI))
        && in_range(64'(`EM_ATTN_QK_Q_ADDR(w)),
                    64'(`EM_ATTN_QK_Q_ADDR_LO), 64'(`EM_ATTN_QK_Q_ADDR_HI))
        && in_range(64'(`EM_ATTN_QK_Q_STRIDE(w)),
                    64'(`EM_ATTN_QK_Q_STRIDE_LO), 64'(`EM_ATTN_QK_Q_STRIDE_HI))
        && in_range(64'(`EM_ATTN_QK_K_ADDR(w)),
                    64'(`EM_ATTN_QK_K_ADDR_LO), 64'(`EM_ATTN_QK_K_ADDR_HI))
        && in_range(64'(`EM_ATTN_QK_K_STRIDE(w)),
                    64'(`EM_ATTN_QK_K_STRIDE_LO), 64'(`EM_ATTN_QK_K_STRIDE_HI))
        && in_range(64'(`EM_ATTN_QK_Z_ADDR(w)),
                    64'(`EM_ATTN_QK_Z_ADDR_LO), 64'(`EM_ATTN_QK_Z_ADDR_HI))
        && in_range(64'(`EM_ATTN_QK_STATS_ADDR(w)),
                    64'(`EM_ATTN_QK_STATS_ADDR_LO), 64'(`EM_ATTN_QK_STATS_ADDR_HI))
        && in_range(64'(`EM_ATTN_QK_MULT(w)),
                    64'(`EM_ATTN_QK_MULT_LO), 64'(`EM_ATTN_QK_MULT_HI))
        && in_range(64'(`EM_ATTN_QK_SHIFT(w)),
                    64'(`EM_ATTN_QK_SHIFT_LO), 64'(`EM_ATTN_QK_SHIFT_HI));
    assign ok_attn_av = (w >> `EM_ATTN_AV_USED_BITS) == '0
        && in_range(64'(`EM_ATTN_AV_X16(w)),
                    64'(`EM_ATTN_AV_X16_LO), 64'(`EM_ATTN_AV_X16_HI))
        && in_range(64'(`EM_ATTN_AV_Y16(w)),
                    64'(`EM_ATTN_AV_Y16_LO), 64'(`EM_ATTN_AV_Y16_HI))
        && in_range(64'(`EM_ATTN_AV_M(w)),
                    64'(`EM_ATTN_AV_M_LO), 64'(`EM_ATTN_AV_M_HI))
        && in_range(64'(`EM_ATTN_AV_N(w)),
                    64'(`EM_ATTN_AV_N_LO), 64'(`EM_ATTN_AV_N_HI))
        && in_range(64'(`EM_ATTN_AV_D(w)),
                    64'(`EM_ATTN_AV_D_LO), 64'(`EM_ATTN_AV_D_HI))
        && in_range(64'(`EM_ATTN_AV_Z_ADDR(w)),
                    64'(`EM_ATTN_AV_Z_ADDR_LO), 64'(`EM_ATTN_AV_Z_ADDR_HI))
        && in_range(64'(`EM_ATTN_AV_STATS_ADDR(w)),
                    64'(`EM_ATTN_AV_STATS_ADDR_LO), 64'(`EM_ATTN_AV_STATS_ADDR_HI))
        && in_range(64'(`EM_ATTN_AV_V_ADDR(w)),
                    64'(`EM_ATTN_AV_V_ADDR_LO), 64'(`EM_ATTN_AV_V_ADDR_HI))
        && in_range(64'(`EM_ATTN_AV_V_STRIDE(w)),
                    64'(`EM_ATTN_AV_V_STRIDE_LO), 64'(`EM_ATTN_AV_V_STRIDE_HI))
        && in_range(64'(`EM_ATTN_AV_O_ADDR(w)),
                    64'(`EM_ATTN_AV_O_ADDR_LO), 64'(`EM_ATTN_AV_O_ADDR_HI))
        && in_range(64'(`EM_ATTN_AV_O_STRIDE(w)),
                    64'(`EM_ATTN_AV_O_STRIDE_LO), 64'(`EM_ATTN_AV_O_STRIDE_HI))
        && in_range(64'(`EM_ATTN_AV_MULT(w)),
                    64'(`EM_ATTN_AV_MULT_LO), 64'(`EM_ATTN_AV_MULT_HI))
        && in_range(64'(`EM_ATTN_AV_SHIFT(w)),
                    64'(`EM_ATTN_AV_SHIFT_LO), 64'(`EM_ATTN_AV_SHIFT_HI));
    assign ok_layernorm = (w >> `EM_LAYERNORM_USED_BITS) == '0
        && in_range(64'(`EM_LAYERNORM_X16(w)),
                    64'(`EM_LAYERNORM_X16_LO), 64'(`EM_LAYERNORM_X16_HI))
        && in_range(64'(`EM_LAYERNORM_Y16(w)),
                    64'(`EM_LAYERNORM_Y16_LO), 64'(`EM_LAYERNORM_Y16_HI))
        && in_range(64'(`EM_LAYERNORM_M(w)),
                    64'(`EM_LAYERNORM_M_LO), 64'(`EM_LAYERNORM_M_HI))
        && in_range(64'(`EM_LAYERNORM_D(w)),
                    64'(`EM_LAYERNORM_D_LO), 64'(`EM_LAYERNORM_D_HI))
        && in_range(64'(`EM_LAYERNORM_X_ADDR(w)),
                    64'(`EM_LAYERNORM_X_ADDR_LO), 64'(`EM_LAYERNORM_X_ADDR_HI))
        && in_range(64'(`EM_LAYERNORM_X_STRIDE(w)),
                    64'(`EM_LAYERNORM_X_STRIDE_LO), 64'(`EM_LAYERNORM_X_STRIDE_HI))
        && in_range(64'(`EM_LAYERNORM_Y_ADDR(w)),
                    64'(`EM_LAYERNORM_Y_ADDR_LO), 64'(`EM_LAYERNORM_Y_ADDR_HI))
        && in_range(64'(`EM_LAYERNORM_Y_STRIDE(w)),
                    64'(`EM_LAYERNORM_Y_STRIDE_LO), 64'(`EM_LAYERNORM_Y_STRIDE_HI))
        && in_range(64'(`EM_LAYERNORM_P_ADDR(w)),
                    64'(`EM_LAYERNORM_P_ADDR_LO), 64'(`EM_LAYERNORM_P_ADDR_HI));
    assign ok_gate_topk = (w >> `EM_GATE_TOPK_USED_BITS) == '0
        && in_range(64'(`EM_GATE_TOPK_M(w)),
                    64'(`EM_GATE_TOPK_M_LO), 64'(`EM_GATE_TOPK_M_HI))
        && in_range(64'(`EM_GATE_TOPK_E(w)),
                    64'(`EM_GATE_TOPK_E_LO), 64'(`EM_GATE_TOPK_E_HI))
        && in_range(64'(`EM_GATE_TOPK_K(w)),
                    64'(`EM_GATE_TOPK_K_LO), 64'(`EM_GATE_TOPK_K_HI))
        && in_range(64'(`EM_GATE_TOPK_Z_ADDR(w)),
                    64'(`EM_GATE_TOPK_Z_ADDR_LO), 64'(`EM_GATE_TOPK_Z_ADDR_HI))
        && in_range(64'(`EM_GATE_TOPK_ROUTE_ADDR(w)),
                    64'(`EM_GATE_TOPK_ROUTE_ADDR_LO), 64'(`EM_GATE_TOPK_ROUTE_ADDR_HI))
        // isa.check's one rule across fields: a token cannot keep more experts than exist.
        && 64'(`EM_GATE_TOPK_K(w)) <= 64'(`EM_GATE_TOPK_E(w));
    assign ok_expert_loop = (w >> `EM_EXPERT_LOOP_USED_BITS) == '0
        && in_range(64'(`EM_EXPERT_LOOP_E(w)),
                    64'(`EM_EXPERT_LOOP_E_LO), 64'(`EM_EXPERT_LOOP_E_HI))
        && in_range(64'(`EM_EXPERT_LOOP_BODY(w)),
                    64'(`EM_EXPERT_LOOP_BODY_LO), 64'(`EM_EXPERT_LOOP_BODY_HI))
        && in_range(64'(`EM_EXPERT_LOOP_CAPACITY(w)),
                    64'(`EM_EXPERT_LOOP_CAPACITY_LO), 64'(`EM_EXPERT_LOOP_CAPACITY_HI))
        && in_range(64'(`EM_EXPERT_LOOP_ROUTE_ADDR(w)),
                    64'(`EM_EXPERT_LOOP_ROUTE_ADDR_LO), 64'(`EM_EXPERT_LOOP_ROUTE_ADDR_HI))
        && in_range(64'(`EM_EXPERT_LOOP_EXPERT_STRIDE(w)),
                    64'(`EM_EXPERT_LOOP_EXPERT_STRIDE_LO), 64'(`EM_EXPERT_LOOP_EXPERT_STRIDE_HI));

    // ------------------------------------------------------------------ opcode
    logic is_end_d;
    logic is_sync_d;
    logic is_dma_copy_d;
    logic is_matmul_d;
    logic is_attn_qk_d;
    logic is_attn_av_d;
    logic is_layernorm_d;
    logic is_gate_topk_d;
    logic is_expert_loop_d;
    logic illegal_opcode_d;
    logic illegal_field_d;

    assign is_end_d         = `EM_OPCODE(w) == `EM_OP_END;
    assign is_sync_d        = `EM_OPCODE(w) == `EM_OP_SYNC;
    assign is_dma_copy_d    = `EM_OPCODE(w) == `EM_OP_DMA_COPY;
    assign is_matmul_d      = `EM_OPCODE(w) == `EM_OP_MATMUL;
    assign is_attn_qk_d     = `EM_OPCODE(w) == `EM_OP_ATTN_QK;
    assign is_attn_av_d     = `EM_OPCODE(w) == `EM_OP_ATTN_AV;
    assign is_layernorm_d   = `EM_OPCODE(w) == `EM_OP_LAYERNORM;
    assign is_gate_topk_d   = `EM_OPCODE(w) == `EM_OP_GATE_TOPK;
    assign is_expert_loop_d = `EM_OPCODE(w) == `EM_OP_EXPERT_LOOP;
    assign illegal_opcode_d = !(is_end_d || is_sync_d || is_dma_copy_d || is_matmul_d
        || is_attn_qk_d || is_attn_av_d || is_layernorm_d || is_gate_topk_d || is_expert_loop_d);
    assign illegal_field_d  = (is_end_d && !ok_end)
        || (is_sync_d && !ok_sync)
        || (is_dma_copy_d && !ok_dma_copy)
        || (is_matmul_d && !ok_matmul)
        || (is_attn_qk_d && !ok_attn_qk)
        || (is_attn_av_d && !ok_attn_av)
        || (is_layernorm_d && !ok_layernorm)
        || (is_gate_topk_d && !ok_gate_topk)
        || (is_expert_loop_d && !ok_expert_loop);

    // ------------------------------------------------------------------ register stage
    // The opcode bits are decoded into the flags before the register; only the fields are
    // sliced out of the stored word.
    /* verilator lint_off UNUSEDSIGNAL */
    logic [`EM_INSN_BITS-1:0] insn_q;
    /* verilator lint_on UNUSEDSIGNAL */

    assign in_ready = !out_valid || out_ready;

    // Only the valid bit is reset: everything else is qualified by it.
    always_ff @(posedge clk) begin
        if (rst)           out_valid <= 1'b0;
        else if (in_ready) out_valid <= in_valid;
    end

    always_ff @(posedge clk) begin
        if (in_valid && in_ready) begin
            insn_q         <= in_insn;
            out_pc         <= in_pc;
            illegal_opcode <= illegal_opcode_d;
            illegal_field  <= illegal_field_d;
            is_end         <= is_end_d;
            is_sync        <= is_sync_d;
            is_dma_copy    <= is_dma_copy_d;
            is_matmul      <= is_matmul_d;
            is_attn_qk     <= is_attn_qk_d;
            is_attn_av     <= is_attn_av_d;
            is_layernorm   <= is_layernorm_d;
            is_gate_topk   <= is_gate_topk_d;
            is_expert_loop <= is_expert_loop_d;
        end
    end

    // ------------------------------------------------------------------ fields
    assign dma_copy_src_indexed      = `EM_DMA_COPY_SRC_INDEXED(insn_q);
    assign dma_copy_dst_indexed      = `EM_DMA_COPY_DST_INDEXED(insn_q);
    assign dma_copy_rows             = `EM_DMA_COPY_ROWS(insn_q);
    assign dma_copy_row_bytes        = `EM_DMA_COPY_ROW_BYTES(insn_q);
    assign dma_copy_src_addr         = `EM_DMA_COPY_SRC_ADDR(insn_q);
    assign dma_copy_src_stride       = `EM_DMA_COPY_SRC_STRIDE(insn_q);
    assign dma_copy_dst_addr         = `EM_DMA_COPY_DST_ADDR(insn_q);
    assign dma_copy_dst_stride       = `EM_DMA_COPY_DST_STRIDE(insn_q);
    assign dma_copy_idx_addr         = `EM_DMA_COPY_IDX_ADDR(insn_q);

    assign matmul_x16                = `EM_MATMUL_X16(insn_q);
    assign matmul_y16                = `EM_MATMUL_Y16(insn_q);
    assign matmul_gelu               = `EM_MATMUL_GELU(insn_q);
    assign matmul_residual           = `EM_MATMUL_RESIDUAL(insn_q);
    assign matmul_expert             = `EM_MATMUL_EXPERT(insn_q);
    assign matmul_gather_x           = `EM_MATMUL_GATHER_X(insn_q);
    assign matmul_scatter_acc        = `EM_MATMUL_SCATTER_ACC(insn_q);
    assign matmul_m                  = `EM_MATMUL_M(insn_q);
    assign matmul_k                  = `EM_MATMUL_K(insn_q);
    assign matmul_n                  = `EM_MATMUL_N(insn_q);
    assign matmul_x_addr             = `EM_MATMUL_X_ADDR(insn_q);
    assign matmul_x_stride           = `EM_MATMUL_X_STRIDE(insn_q);
    assign matmul_w_addr             = `EM_MATMUL_W_ADDR(insn_q);
    assign matmul_p_addr             = `EM_MATMUL_P_ADDR(insn_q);
    assign matmul_y_addr             = `EM_MATMUL_Y_ADDR(insn_q);
    assign matmul_y_stride           = `EM_MATMUL_Y_STRIDE(insn_q);
    assign matmul_r_addr             = `EM_MATMUL_R_ADDR(insn_q);
    assign matmul_gelu_frac          = `EM_MATMUL_GELU_FRAC(insn_q);

    assign attn_qk_x16               = `EM_ATTN_QK_X16(insn_q);
    assign attn_qk_m                 = `EM_ATTN_QK_M(insn_q);
    assign attn_qk_n                 = `EM_ATTN_QK_N(insn_q);
    assign attn_qk_d                 = `EM_ATTN_QK_D(insn_q);
    assign attn_qk_q_addr            = `EM_ATTN_QK_Q_ADDR(insn_q);
    assign attn_qk_q_stride          = `EM_ATTN_QK_Q_STRIDE(insn_q);
    assign attn_qk_k_addr            = `EM_ATTN_QK_K_ADDR(insn_q);
    assign attn_qk_k_stride          = `EM_ATTN_QK_K_STRIDE(insn_q);
    assign attn_qk_z_addr            = `EM_ATTN_QK_Z_ADDR(insn_q);
    assign attn_qk_stats_addr        = `EM_ATTN_QK_STATS_ADDR(insn_q);
    assign attn_qk_mult              = `EM_ATTN_QK_MULT(insn_q);
    assign attn_qk_shift             = `EM_ATTN_QK_SHIFT(insn_q);

    assign attn_av_x16               = `EM_ATTN_AV_X16(insn_q);
    assign attn_av_y16               = `EM_ATTN_AV_Y16(insn_q);
    assign attn_av_m                 = `EM_ATTN_AV_M(insn_q);
    assign attn_av_n                 = `EM_ATTN_AV_N(insn_q);
    assign attn_av_d                 = `EM_ATTN_AV_D(insn_q);
    assign attn_av_z_addr            = `EM_ATTN_AV_Z_ADDR(insn_q);
    assign attn_av_stats_addr        = `EM_ATTN_AV_STATS_ADDR(insn_q);
    assign attn_av_v_addr            = `EM_ATTN_AV_V_ADDR(insn_q);
    assign attn_av_v_stride          = `EM_ATTN_AV_V_STRIDE(insn_q);
    assign attn_av_o_addr            = `EM_ATTN_AV_O_ADDR(insn_q);
    assign attn_av_o_stride          = `EM_ATTN_AV_O_STRIDE(insn_q);
    assign attn_av_mult              = `EM_ATTN_AV_MULT(insn_q);
    assign attn_av_shift             = `EM_ATTN_AV_SHIFT(insn_q);

    assign layernorm_x16             = `EM_LAYERNORM_X16(insn_q);
    assign layernorm_y16             = `EM_LAYERNORM_Y16(insn_q);
    assign layernorm_m               = `EM_LAYERNORM_M(insn_q);
    assign layernorm_d               = `EM_LAYERNORM_D(insn_q);
    assign layernorm_x_addr          = `EM_LAYERNORM_X_ADDR(insn_q);
    assign layernorm_x_stride        = `EM_LAYERNORM_X_STRIDE(insn_q);
    assign layernorm_y_addr          = `EM_LAYERNORM_Y_ADDR(insn_q);
    assign layernorm_y_stride        = `EM_LAYERNORM_Y_STRIDE(insn_q);
    assign layernorm_p_addr          = `EM_LAYERNORM_P_ADDR(insn_q);

    assign gate_topk_m               = `EM_GATE_TOPK_M(insn_q);
    assign gate_topk_e               = `EM_GATE_TOPK_E(insn_q);
    assign gate_topk_k               = `EM_GATE_TOPK_K(insn_q);
    assign gate_topk_z_addr          = `EM_GATE_TOPK_Z_ADDR(insn_q);
    assign gate_topk_route_addr      = `EM_GATE_TOPK_ROUTE_ADDR(insn_q);

    assign expert_loop_e             = `EM_EXPERT_LOOP_E(insn_q);
    assign expert_loop_body          = `EM_EXPERT_LOOP_BODY(insn_q);
    assign expert_loop_capacity      = `EM_EXPERT_LOOP_CAPACITY(insn_q);
    assign expert_loop_route_addr    = `EM_EXPERT_LOOP_ROUTE_ADDR(insn_q);
    assign expert_loop_expert_stride = `EM_EXPERT_LOOP_EXPERT_STRIDE(insn_q);
endmodule
