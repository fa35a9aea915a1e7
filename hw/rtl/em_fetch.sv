// em_fetch: reads one 256-bit instruction from DRAM through an AXI4 read port.
//
// The instruction at byte address `addr` spans ceil((addr % BYTES + 32) / BYTES) beats of the
// data bus (several when the bus is narrower than an instruction; INSN_BASE need not be
// aligned, so the bytes are shifted into place after the last beat). The beats are requested as
// INCR bursts through em_axi_burst (split at 4 KiB), collected, and the instruction is offered
// to the decoder with its index. An error response on any beat (SLVERR/DECERR) drops the
// instruction and raises `err` for one cycle instead, once every beat has arrived.
//
// Handshake: `start` (one cycle, while idle) begins a fetch; out_valid/out_ready hands the
// instruction on. One fetch at a time: latency is the bus round trip plus one cycle.
`include "em_isa.svh"

module em_fetch #(
    parameter int BYTES = 8   // bytes per data beat
) (
    input  logic                     clk,
    input  logic                     rst,          // synchronous, active high

    input  logic                     start,
    input  logic [31:0]              addr,         // byte address of the instruction
    input  logic [31:0]              pc,           // its index, passed through

    // AXI4 read address and data channels (the rest of the AR fields are constants in em_core)
    output logic                     ar_valid,
    input  logic                     ar_ready,
    output logic [31:0]              ar_addr,
    output logic [7:0]               ar_len,
    input  logic                     r_valid,
    output logic                     r_ready,
    input  logic [BYTES*8-1:0]       r_data,
    input  logic                     r_err,        // RRESP is SLVERR or DECERR

    output logic                     out_valid,
    input  logic                     out_ready,
    output logic [`EM_INSN_BITS-1:0] out_insn,
    output logic [31:0]              out_pc,
    output logic                     err           // one cycle: the fetch got an error response
);
    localparam int LB = $clog2(BYTES);
    localparam int IB = `EM_INSN_BITS / 8;
    // Most beats an instruction can span: it may start at the last byte of a beat.
    localparam int NBMAX = (2 * BYTES + IB - 2) / BYTES;

    logic [NBMAX*BYTES*8-1:0] beats_q;
    logic [LB-1:0]            offset;     // byte of the first beat where the instruction starts
    logic [31:0]              nbeats;
    logic [31:0]              got;
    logic                     receiving;
    logic                     bad;
    logic                     last_beat;
    /* verilator lint_off UNUSEDSIGNAL */
    logic                     ar_busy;      // implied by `receiving`
    /* verilator lint_on UNUSEDSIGNAL */

    em_axi_burst #(.BYTES(BYTES)) u_ar (
        .clk, .rst,
        .cmd_valid(start),
        .cmd_addr({addr[31:LB], {LB{1'b0}}}),
        .cmd_beats((32'(addr[LB-1:0]) + 32'(IB) + 32'(BYTES - 1)) >> LB),
        .a_valid(ar_valid), .a_ready(ar_ready), .a_addr(ar_addr), .a_len(ar_len),
        .busy(ar_busy)
    );

    assign r_ready   = receiving;
    assign last_beat = r_valid && r_ready && got == nbeats - 32'd1;
    assign out_insn  = `EM_INSN_BITS'(beats_q >> {offset, 3'b000});

    always_ff @(posedge clk) begin
        if (rst) begin
            receiving <= 1'b0;
            out_valid <= 1'b0;
            err       <= 1'b0;
        end else begin
            err <= 1'b0;
            if (start) begin
                receiving <= 1'b1;
                offset    <= addr[LB-1:0];
                nbeats    <= (32'(addr[LB-1:0]) + 32'(IB) + 32'(BYTES - 1)) >> LB;
                out_pc    <= pc;
                got       <= '0;
                bad       <= 1'b0;
            end else if (r_valid && r_ready) begin
                beats_q[got[$clog2(NBMAX+1)-1:0] * BYTES * 8 +: BYTES * 8] <= r_data;
                got <= got + 32'd1;
                if (last_beat) begin
                    receiving <= 1'b0;
                    out_valid <= !(bad || r_err);
                    err       <= bad || r_err;
                end else begin
                    bad <= bad || r_err;
                end
            end else if (out_valid && out_ready) begin
                out_valid <= 1'b0;
            end
        end
    end
endmodule
