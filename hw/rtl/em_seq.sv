// em_seq: the sequencer, the control FSM behind the register map.
//
// Runs the instruction stream one instruction at a time: check pc against INSN_COUNT, fetch
// (em_fetch), decode (em_decode), dispatch to an execution unit, wait for it, retire. Control
// semantics are those of the golden model (sim/golden/machine.py):
//
//   start          clears STATUS, ERROR_*, INSN_RETIRED and the byte counters, pc = 0
//   pc >= count    error NO_END with ERROR_PC = INSN_COUNT
//   fetch error    DRAM_RANGE at pc (an error response on the instruction's beats)
//   decode         ILLEGAL_OPCODE, then ILLEGAL_FIELD (em_decode's precedence) at pc
//   END            retires (counted) and stops with STATUS.done
//   SYNC           retires: every unit finishes its writes (all B responses) before retiring,
//                  so there is never anything outstanding to wait for
//   DMA_COPY       em_dma; an error response is DRAM_RANGE at pc
//   MATMUL         em_matmul; an error response is DRAM_RANGE at pc; expert mode (`expert`,
//                  `gather_x`, `scatter_acc`) and rows longer than the activation buffer are
//                  UNIMPLEMENTED at pc
//   LAYERNORM      em_ln_exec; an error response is DRAM_RANGE, an int16 row longer than 2^14,
//                  eps or shift out of range ILLEGAL_FIELD, a row longer than the unit's buffer
//                  UNIMPLEMENTED at pc
//   the others     UNIMPLEMENTED at pc (legal, but not built in this hardware yet)
//
// A new execution unit adds its is_<op> to the dispatch in S_FETCH with a start pulse, and its
// done/err to S_EXEC, like the DMA's. CYCLES counts every cycle from start to done or error;
// MAC_CYCLES every cycle in which the MAC array consumed a token (`mac_busy`). `exec_mm` and
// `exec_ln` say which unit owns the AXI data channels (the DMA when neither): the MATMUL or
// LAYERNORM unit from its dispatch until another unit's (all finish every write before they
// report done, so the switch is never live). `retire_valid` pulses with `retire_pc` one
// cycle after each instruction has retired (its writes are in DRAM by then). Start while busy is
// ignored.
`include "em_isa.svh"
`include "em_regs.svh"

module em_seq (
    input  logic        clk,
    input  logic        rst,            // synchronous, active high (also the soft reset)

    // Registers
    input  logic        start,
    input  logic [31:0] insn_base,
    input  logic [31:0] insn_count,
    output logic        busy,
    output logic        done,
    output logic        error,
    output logic [31:0] error_code,
    output logic [31:0] error_pc,
    output logic [63:0] cycles,
    output logic [63:0] dram_rd_bytes,
    output logic [63:0] dram_wr_bytes,
    output logic [31:0] insn_retired,

    // Fetch
    output logic        fetch_start,
    output logic [31:0] fetch_addr,
    output logic [31:0] fetch_pc,
    input  logic        fetch_err,

    // Decode (the decoder's output side)
    input  logic        dec_valid,
    output logic        dec_ready,
    input  logic        illegal_opcode,
    input  logic        illegal_field,
    input  logic        is_end,
    input  logic        is_sync,
    input  logic        is_dma_copy,
    input  logic        is_matmul,
    input  logic        mm_expert,      // any of MATMUL's expert-mode flags
    input  logic        is_layernorm,

    // DMA engine
    output logic        dma_start,
    input  logic        dma_done,
    input  logic        dma_err,
    input  logic        cnt_valid,
    input  logic [16:0] cnt_rd_bytes,
    input  logic [16:0] cnt_wr_bytes,

    // MATMUL unit
    output logic        mm_start,
    input  logic        mm_done,
    input  logic        mm_err,
    input  logic        mm_unsupported,
    input  logic [63:0] mm_rd_bytes,    // with mm_done
    input  logic [63:0] mm_wr_bytes,
    input  logic        mac_busy,
    output logic [63:0] mac_cycles,
    output logic        exec_mm,

    // LAYERNORM unit
    output logic        ln_start,
    input  logic        ln_done,
    input  logic        ln_err,
    input  logic        ln_illegal,
    input  logic        ln_unsupported,
    input  logic [63:0] ln_rd_bytes,    // with ln_done
    input  logic [63:0] ln_wr_bytes,
    output logic        exec_ln,

    output logic        rd_sel_exec,    // the AXI read channels belong to the execution unit
    output logic        retire_valid,
    output logic [31:0] retire_pc
);
    localparam int IB_LOG2 = $clog2(`EM_INSN_BITS / 8);

    typedef enum logic [1:0] { S_IDLE, S_CHECK, S_FETCH, S_EXEC } state_t;
    state_t state;
    logic [31:0] pc;

    assign fetch_start = state == S_CHECK && pc < insn_count;
    assign fetch_addr  = insn_base + (pc << IB_LOG2);
    assign fetch_pc    = pc;
    assign dec_ready   = state == S_FETCH;
    assign dma_start   = state == S_FETCH && dec_valid && !illegal_opcode && !illegal_field
                         && is_dma_copy;
    assign mm_start    = state == S_FETCH && dec_valid && !illegal_opcode && !illegal_field
                         && is_matmul && !mm_expert;
    assign ln_start    = state == S_FETCH && dec_valid && !illegal_opcode && !illegal_field
                         && is_layernorm;
    assign rd_sel_exec = state == S_EXEC;

    logic unit_done;
    assign unit_done = exec_ln ? ln_done : exec_mm ? mm_done : dma_done;

    always_ff @(posedge clk) begin
        if (rst) begin
            state         <= S_IDLE;
            busy          <= 1'b0;
            done          <= 1'b0;
            error         <= 1'b0;
            error_code    <= `EM_ERR_NONE;
            error_pc      <= '0;
            cycles        <= '0;
            dram_rd_bytes <= '0;
            dram_wr_bytes <= '0;
            mac_cycles    <= '0;
            insn_retired  <= '0;
            retire_valid  <= 1'b0;
            exec_mm       <= 1'b0;
            exec_ln       <= 1'b0;
        end else begin
            retire_valid <= 1'b0;
            if (busy) cycles <= cycles + 64'd1;
            if (mac_busy) mac_cycles <= mac_cycles + 64'd1;
            if (cnt_valid) begin
                dram_rd_bytes <= dram_rd_bytes + 64'(cnt_rd_bytes);
                dram_wr_bytes <= dram_wr_bytes + 64'(cnt_wr_bytes);
            end
            if (mm_done) begin
                dram_rd_bytes <= dram_rd_bytes + mm_rd_bytes;
                dram_wr_bytes <= dram_wr_bytes + mm_wr_bytes;
            end
            if (ln_done) begin
                dram_rd_bytes <= dram_rd_bytes + ln_rd_bytes;
                dram_wr_bytes <= dram_wr_bytes + ln_wr_bytes;
            end
            case (state)
                S_IDLE: if (start) begin
                    busy          <= 1'b1;
                    done          <= 1'b0;
                    error         <= 1'b0;
                    error_code    <= `EM_ERR_NONE;
                    error_pc      <= '0;
                    cycles        <= '0;
                    dram_rd_bytes <= '0;
                    dram_wr_bytes <= '0;
                    mac_cycles    <= '0;
                    insn_retired  <= '0;
                    pc            <= '0;
                    state         <= S_CHECK;
                end
                S_CHECK: if (pc >= insn_count) begin
                    fail(`EM_ERR_NO_END, insn_count);
                end else begin
                    state <= S_FETCH;
                end
                S_FETCH: if (fetch_err) begin
                    fail(`EM_ERR_DRAM_RANGE, pc);
                end else if (dec_valid) begin
                    if (illegal_opcode)   fail(`EM_ERR_ILLEGAL_OPCODE, pc);
                    else if (illegal_field) fail(`EM_ERR_ILLEGAL_FIELD, pc);
                    else if (is_end) begin
                        retire();
                        busy  <= 1'b0;
                        done  <= 1'b1;
                        state <= S_IDLE;
                    end
                    else if (is_sync)     retire();
                    else if (is_dma_copy) begin
                        exec_mm <= 1'b0;
                        exec_ln <= 1'b0;
                        state   <= S_EXEC;
                    end
                    else if (is_matmul && !mm_expert) begin
                        exec_mm <= 1'b1;
                        exec_ln <= 1'b0;
                        state   <= S_EXEC;
                    end
                    else if (is_layernorm) begin
                        exec_mm <= 1'b0;
                        exec_ln <= 1'b1;
                        state   <= S_EXEC;
                    end
                    else                  fail(`EM_ERR_UNIMPLEMENTED, pc);
                end
                S_EXEC: if (unit_done) begin
                    if (exec_mm && mm_unsupported) fail(`EM_ERR_UNIMPLEMENTED, pc);
                    else if (exec_ln && ln_unsupported) fail(`EM_ERR_UNIMPLEMENTED, pc);
                    else if (exec_ln && ln_illegal) fail(`EM_ERR_ILLEGAL_FIELD, pc);
                    else if (exec_ln ? ln_err : exec_mm ? mm_err : dma_err)
                        fail(`EM_ERR_DRAM_RANGE, pc);
                    else retire();
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // The instruction at pc has finished: count it, report it, go on with the next one.
    task automatic retire();
        insn_retired <= insn_retired + 32'd1;
        retire_valid <= 1'b1;
        retire_pc    <= pc;
        pc           <= pc + 32'd1;
        state        <= S_CHECK;
    endtask

    task automatic fail(input int code, input logic [31:0] at);
        busy       <= 1'b0;
        error      <= 1'b1;
        error_code <= 32'(code);
        error_pc   <= at;
        state      <= S_IDLE;
    endtask
endmodule
