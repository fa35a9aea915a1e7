// em_mac_unit: the unified compute unit's matrix part, em_mac_array feeding em_accumulator.
//
// The sequencer loads weight chunks and streams tokens (see em_mac_array), the epilogue reads
// accumulators back by token (see em_accumulator). A token presented in cycle c has updated its
// accumulators for read-out requests accepted from cycle c + LATENCY + 2 on, where
// LATENCY = 2 + log2(ROWS) is the array's; the token index travels with the data, so the
// sequencer needs no other bookkeeping than that count.
`include "edgemoe_config.svh"

module em_mac_unit #(
    parameter int ROWS         = `EM_ARRAY_ROWS,
    parameter int COLS         = `EM_ARRAY_COLS,
    parameter int ACT_WIDTH    = `EM_ACT_WIDTH,
    parameter int WEIGHT_WIDTH = `EM_WEIGHT_WIDTH,
    parameter int ACC_WIDTH    = `EM_ACC_WIDTH,
    parameter int DEPTH        = `EM_ACC_BUFFER_DEPTH,
    parameter int LOAD_WIDTH   = `EM_AXI_DATA_WIDTH < ROWS * COLS * WEIGHT_WIDTH
                                 ? `EM_AXI_DATA_WIDTH : ROWS * COLS * WEIGHT_WIDTH,
    localparam int TAG_WIDTH   = $clog2(DEPTH),
    localparam int CHUNKS      = ROWS * COLS * WEIGHT_WIDTH / LOAD_WIDTH,
    localparam int IDX_WIDTH   = CHUNKS > 1 ? $clog2(CHUNKS) : 1,
    localparam int PSUM_WIDTH  = ACT_WIDTH + WEIGHT_WIDTH + $clog2(ROWS)
) (
    input  logic                        clk,
    input  logic                        rst,          // synchronous, active high

    input  logic                        w_valid,
    input  logic [IDX_WIDTH-1:0]        w_idx,
    input  logic [LOAD_WIDTH-1:0]       w_data,

    input  logic                        in_valid,
    input  logic                        in_swap,
    input  logic [ROWS*ACT_WIDTH-1:0]   in_x,
    input  logic [TAG_WIDTH-1:0]        in_tag,
    input  logic                        in_first_k,

    input  logic                        rd_valid,
    output logic                        rd_ready,
    input  logic [TAG_WIDTH-1:0]        rd_token,

    output logic                        out_valid,
    input  logic                        out_ready,
    output logic [TAG_WIDTH-1:0]        out_token,
    output logic [COLS*ACC_WIDTH-1:0]   out_acc
);
    logic                       psum_valid;
    logic [TAG_WIDTH-1:0]       psum_tag;
    logic                       psum_first_k;
    logic [COLS*PSUM_WIDTH-1:0] psum;

    em_mac_array #(
        .ROWS(ROWS), .COLS(COLS), .ACT_WIDTH(ACT_WIDTH), .WEIGHT_WIDTH(WEIGHT_WIDTH),
        .TAG_WIDTH(TAG_WIDTH), .LOAD_WIDTH(LOAD_WIDTH)
    ) u_array (
        .clk, .rst,
        .w_valid, .w_idx, .w_data,
        .in_valid, .in_swap, .in_x, .in_tag, .in_first_k,
        .out_valid(psum_valid), .out_tag(psum_tag), .out_first_k(psum_first_k), .out_psum(psum)
    );

    em_accumulator #(
        .COLS(COLS), .DEPTH(DEPTH), .ACC_WIDTH(ACC_WIDTH), .PSUM_WIDTH(PSUM_WIDTH),
        .TAG_WIDTH(TAG_WIDTH)
    ) u_acc (
        .clk, .rst,
        .in_valid(psum_valid), .in_token(psum_tag), .in_first_k(psum_first_k), .in_psum(psum),
        .rd_valid, .rd_ready, .rd_token,
        .out_valid, .out_ready, .out_token, .out_acc
    );
endmodule
