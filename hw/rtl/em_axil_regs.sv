// em_axil_regs: the AXI4-Lite slave with the host-visible registers of hw/regs.py.
//
// Offsets, control and status bit positions come from the generated em_regs.svh, the config
// hash from edgemoe_config.svh; this file restates none of them. Behaviour per register, as the
// golden model (sim/golden/machine.py) implements it:
//
//   CTRL               write-only: writing bit START (BIT RESET) makes `start` (`soft_reset`)
//                      high for exactly one cycle, one cycle after the write is accepted; the
//                      bits are self-clearing and CTRL reads as 0
//   INSN_BASE/COUNT    read-write, exported to the core; byte strobes honoured; reset to 0 by
//                      `rst` only (a soft reset restarts the core, not the host's settings)
//   STATUS, ERROR_*,   read-only views of core inputs; writes are accepted (OKAY) and ignored
//   counters, RETIRED
//   CONFIG_HASH_LO/HI  read-only, the EM_CONFIG_HASH of the config the RTL was generated for
//
// The 64-bit counters are read as two halves while they may still be counting, so reading a
// counter's _LO half also captures its high half, and reading _HI returns that capture: LO then
// HI (the order of host/driver.py read64) is one consistent 64-bit value. Reading _HI without a
// _LO read before it returns whatever the last _LO read captured.
//
// Unmapped offsets read 0 and ignore writes, with an OKAY response. An error response would be
// more informative, but on the ZynqMP a SLVERR from the PL becomes an asynchronous SError on the
// CPU, which takes the whole host down for a stray access; the register map is fixed and the
// driver uses names only. The address bits below the 32-bit word (addr[1:0]) do not select a
// register: byte lanes are chosen by wstrb, as AXI4-Lite intends.
//
// Handshakes: AW and W are each captured into a one-entry holding register as they arrive, in
// either order or together; the write happens once both are held and the B channel is free, so
// B back-pressure stalls further writes without losing any. A read is answered one cycle after
// AR is accepted; arready = !rvalid || rready, so R back-pressure stalls AR. Throughput: one write
// every two cycles, one read per cycle. No awprot/arprot ports: every access is allowed.
`include "edgemoe_config.svh"
`include "em_regs.svh"

module em_axil_regs #(
    // 12: the 4 KiB block the Vivado address editor assigns; 8 already covers the map.
    parameter int ADDR_WIDTH = 12
) (
    input  logic                  clk,
    input  logic                  rst,            // synchronous, active high

    // AXI4-Lite slave, 32-bit data
    input  logic [ADDR_WIDTH-1:0] s_axil_awaddr,
    input  logic                  s_axil_awvalid,
    output logic                  s_axil_awready,
    input  logic [31:0]           s_axil_wdata,
    input  logic [3:0]            s_axil_wstrb,
    input  logic                  s_axil_wvalid,
    output logic                  s_axil_wready,
    output logic [1:0]            s_axil_bresp,
    output logic                  s_axil_bvalid,
    input  logic                  s_axil_bready,
    input  logic [ADDR_WIDTH-1:0] s_axil_araddr,
    input  logic                  s_axil_arvalid,
    output logic                  s_axil_arready,
    output logic [31:0]           s_axil_rdata,
    output logic [1:0]            s_axil_rresp,
    output logic                  s_axil_rvalid,
    input  logic                  s_axil_rready,

    // To the core
    output logic                  start,          // one-cycle pulse
    output logic                  soft_reset,     // one-cycle pulse
    output logic [31:0]           insn_base,
    output logic [31:0]           insn_count,

    // From the core
    input  logic                  busy,
    input  logic                  done,
    input  logic                  error,
    input  logic [31:0]           error_code,     // a regs.ErrorCode value
    input  logic [31:0]           error_pc,
    input  logic [63:0]           cycles,
    input  logic [63:0]           mac_cycles,
    input  logic [63:0]           dram_rd_bytes,
    input  logic [63:0]           dram_wr_bytes,
    input  logic [31:0]           insn_retired
);
    // The register offsets are 8-bit constants; a narrower bus would alias them silently.
    if (ADDR_WIDTH < 8) begin : g_addr_width_check
        $error("em_axil_regs: ADDR_WIDTH must be at least 8");
    end

    localparam logic [1:0] RESP_OKAY = 2'b00;  // AXI BRESP/RRESP encoding
    localparam logic [63:0] CONFIG_HASH = `EM_CONFIG_HASH;

    // Word address of a register: the byte offset with its two low bits dropped.
    localparam int WA = ADDR_WIDTH - 2;

    function automatic logic [WA-1:0] word(input logic [7:0] offset);
        word = WA'(offset >> 2);
    endfunction

    // Bytes of `d` selected by `strb` replace those of `q`.
    function automatic logic [31:0] merge(input logic [31:0] q, input logic [31:0] d,
                                          input logic [3:0] strb);
        merge = q;
        for (int b = 0; b < 4; b++) begin
            if (strb[b]) merge[b*8 +: 8] = d[b*8 +: 8];
        end
    endfunction

    // ------------------------------------------------------------------ write channel
    logic          aw_held;
    logic          w_held;
    logic [WA-1:0] aw_word_q;
    logic [31:0]   w_data_q;
    logic [3:0]    w_strb_q;
    logic          do_write;

    // addr[1:0] is the byte within the register word: wstrb selects the bytes.
    /* verilator lint_off UNUSEDSIGNAL */
    logic [ADDR_WIDTH-1:0] awaddr;
    logic [ADDR_WIDTH-1:0] araddr;
    /* verilator lint_on UNUSEDSIGNAL */
    assign awaddr = s_axil_awaddr;
    assign araddr = s_axil_araddr;

    assign s_axil_awready = !aw_held;
    assign s_axil_wready  = !w_held;
    assign do_write       = aw_held && w_held && (!s_axil_bvalid || s_axil_bready);
    assign s_axil_bresp   = RESP_OKAY;

    always_ff @(posedge clk) begin
        if (rst) begin
            aw_held       <= 1'b0;
            w_held        <= 1'b0;
            s_axil_bvalid <= 1'b0;
        end else begin
            // A channel's holding register empties only through do_write, which needs it
            // full, so "accept" and "empty" never meet in one cycle.
            if (s_axil_awvalid && s_axil_awready) aw_held <= 1'b1;
            else if (do_write)                    aw_held <= 1'b0;
            if (s_axil_wvalid && s_axil_wready)   w_held  <= 1'b1;
            else if (do_write)                    w_held  <= 1'b0;
            if (do_write)           s_axil_bvalid <= 1'b1;
            else if (s_axil_bready) s_axil_bvalid <= 1'b0;
        end
    end

    always_ff @(posedge clk) begin
        if (s_axil_awvalid && s_axil_awready) aw_word_q <= awaddr[ADDR_WIDTH-1:2];
        if (s_axil_wvalid && s_axil_wready) begin
            w_data_q <= s_axil_wdata;
            w_strb_q <= s_axil_wstrb;
        end
    end

    // ------------------------------------------------------------------ writable registers
    logic write_ctrl;
    assign write_ctrl = do_write && aw_word_q == word(`EM_REG_CTRL);

    always_ff @(posedge clk) begin
        if (rst) begin
            start      <= 1'b0;
            soft_reset <= 1'b0;
            insn_base  <= '0;
            insn_count <= '0;
        end else begin
            // Registered, so each pulse lasts exactly the one cycle after the write.
            start      <= write_ctrl && w_strb_q[`EM_CTRL_START_BIT / 8]
                                     && w_data_q[`EM_CTRL_START_BIT];
            soft_reset <= write_ctrl && w_strb_q[`EM_CTRL_RESET_BIT / 8]
                                     && w_data_q[`EM_CTRL_RESET_BIT];
            if (do_write && aw_word_q == word(`EM_REG_INSN_BASE))
                insn_base <= merge(insn_base, w_data_q, w_strb_q);
            if (do_write && aw_word_q == word(`EM_REG_INSN_COUNT))
                insn_count <= merge(insn_count, w_data_q, w_strb_q);
        end
    end

    // ------------------------------------------------------------------ read channel
    logic          ar_fire;
    logic [WA-1:0] ar_word;
    logic [31:0]   rd_data;
    logic [31:0]   cycles_hi_q;
    logic [31:0]   mac_cycles_hi_q;
    logic [31:0]   dram_rd_bytes_hi_q;
    logic [31:0]   dram_wr_bytes_hi_q;

    assign s_axil_arready = !s_axil_rvalid || s_axil_rready;
    assign ar_fire        = s_axil_arvalid && s_axil_arready;
    assign ar_word        = araddr[ADDR_WIDTH-1:2];
    assign s_axil_rresp   = RESP_OKAY;

    always_comb begin
        rd_data = '0;  // CTRL and unmapped offsets
        case (ar_word)
            word(`EM_REG_STATUS): begin
                rd_data[`EM_STATUS_BUSY_BIT]  = busy;
                rd_data[`EM_STATUS_DONE_BIT]  = done;
                rd_data[`EM_STATUS_ERROR_BIT] = error;
            end
            word(`EM_REG_ERROR_CODE):       rd_data = error_code;
            word(`EM_REG_ERROR_PC):         rd_data = error_pc;
            word(`EM_REG_INSN_BASE):        rd_data = insn_base;
            word(`EM_REG_INSN_COUNT):       rd_data = insn_count;
            word(`EM_REG_CYCLES_LO):        rd_data = cycles[31:0];
            word(`EM_REG_CYCLES_HI):        rd_data = cycles_hi_q;
            word(`EM_REG_MAC_CYCLES_LO):    rd_data = mac_cycles[31:0];
            word(`EM_REG_MAC_CYCLES_HI):    rd_data = mac_cycles_hi_q;
            word(`EM_REG_DRAM_RD_BYTES_LO): rd_data = dram_rd_bytes[31:0];
            word(`EM_REG_DRAM_RD_BYTES_HI): rd_data = dram_rd_bytes_hi_q;
            word(`EM_REG_DRAM_WR_BYTES_LO): rd_data = dram_wr_bytes[31:0];
            word(`EM_REG_DRAM_WR_BYTES_HI): rd_data = dram_wr_bytes_hi_q;
            word(`EM_REG_INSN_RETIRED):     rd_data = insn_retired;
            word(`EM_REG_CONFIG_HASH_LO):   rd_data = CONFIG_HASH[31:0];
            word(`EM_REG_CONFIG_HASH_HI):   rd_data = CONFIG_HASH[63:32];
            default: ;
        endcase
    end

    always_ff @(posedge clk) begin
        if (rst)                s_axil_rvalid <= 1'b0;
        else if (ar_fire)       s_axil_rvalid <= 1'b1;
        else if (s_axil_rready) s_axil_rvalid <= 1'b0;
    end

    // Read data and counter captures are qualified by rvalid and by the _LO read: no reset.
    always_ff @(posedge clk) begin
        if (ar_fire) begin
            s_axil_rdata <= rd_data;
            if (ar_word == word(`EM_REG_CYCLES_LO))
                cycles_hi_q <= cycles[63:32];
            if (ar_word == word(`EM_REG_MAC_CYCLES_LO))
                mac_cycles_hi_q <= mac_cycles[63:32];
            if (ar_word == word(`EM_REG_DRAM_RD_BYTES_LO))
                dram_rd_bytes_hi_q <= dram_rd_bytes[63:32];
            if (ar_word == word(`EM_REG_DRAM_WR_BYTES_LO))
                dram_wr_bytes_hi_q <= dram_wr_bytes[63:32];
        end
    end
endmodule
