// em_requant: output-stage requantizer of the MAC array.
//
// For LANES lanes in parallel it turns a wide signed accumulator into an OUT_WIDTH-bit activation,
// bit for bit as edgemoe.hw.numerics.fixedpoint defines it:
//
//   t = wrap(acc + bias, ACC_WIDTH)                 two's complement wrap, like the accumulator
//   p = t * mult                                    full width, mult unsigned
//   r = shift ? (p + 2**(shift-1)) >>> shift : p    round half up (towards +inf)
//   y = saturate(r, OUT_WIDTH)                      clamp to the signed OUT_WIDTH range
//
// Handshake: valid/ready on both sides, two register stages (the multiplier output, then the
// rounded and saturated result). Each stage accepts new data when it is empty or when the stage
// after it is handing its data on, so bubbles collapse and back-pressure is lossless. in_ready
// depends combinationally on out_ready (two gates), which keeps full throughput with no skid
// buffer. Two stages are enough for simulation and lint; closing 300 MHz on the ACC_WIDTH x 17
// product will need the DSP's internal registers, which the handshake makes transparent to add.
//
// Vectors are flat (lane i occupies bits [i*W +: W]) rather than packed 2-D arrays so that the
// ports look the same to Verilator, Yosys and cocotb.
module em_requant #(
    parameter int LANES     = 4,
    parameter int ACC_WIDTH = 32,
    parameter int OUT_WIDTH = 8
) (
    input  logic                         clk,
    input  logic                         rst,        // synchronous, active high

    input  logic                         in_valid,
    output logic                         in_ready,
    input  logic [LANES*ACC_WIDTH-1:0]   in_acc,     // signed accumulators
    input  logic [LANES*32-1:0]          in_bias,    // signed
    input  logic [LANES*16-1:0]          in_mult,    // unsigned
    input  logic [LANES*6-1:0]           in_shift,   // 0..63

    output logic                         out_valid,
    input  logic                         out_ready,
    output logic [LANES*OUT_WIDTH-1:0]   out_data    // signed, saturated
);
    // |t * mult| < 2**(ACC_WIDTH-1) * 2**16, so the product fits ACC_WIDTH+16 signed bits exactly.
    localparam int PW = ACC_WIDTH + 16;
    localparam logic signed [PW-1:0] OUT_MAX = PW'((64'sd1 <<< (OUT_WIDTH - 1)) - 64'sd1);
    // Not `-PW'(x)`: Yosys 0.70 silently drops a unary minus written right before a size cast
    // (`-(PW'(x))` is fine), which made every lane of its netlist saturate low.
    localparam logic signed [PW-1:0] OUT_MIN = -OUT_MAX - 1;

    // ------------------------------------------------------------------ pipeline control
    // Only the valid bits are reset (in em_pipe_ctrl): data registers are qualified by them,
    // and leaving them without reset lets synthesis pack them into the DSP output registers.
    logic [1:0] load;
    em_pipe_ctrl #(.STAGES(2)) u_ctrl (
        .clk, .rst, .in_valid, .in_ready, .out_valid, .out_ready, .load
    );

    // ------------------------------------------------------------------ datapath, per lane
    for (genvar i = 0; i < LANES; i++) begin : g_lane
        logic signed [ACC_WIDTH-1:0] acc;
        // With ACC_WIDTH < 32 the top bias bits cannot change the wrapped sum.
        /* verilator lint_off UNUSEDSIGNAL */
        logic signed [31:0]          bias;
        /* verilator lint_on UNUSEDSIGNAL */
        logic signed [ACC_WIDTH-1:0] t;
        logic signed [PW-1:0]        p_d;
        logic signed [PW-1:0]        p_q;
        logic        [5:0]           shift_q;
        logic signed [PW-1:0]        half;     // p >>> (shift-1): keeps the rounding bit at [0]
        logic signed [PW-1:0]        r;
        logic        [OUT_WIDTH-1:0] y_d;
        logic        [OUT_WIDTH-1:0] y_q;

        assign acc  = in_acc[i*ACC_WIDTH +: ACC_WIDTH];
        assign bias = in_bias[i*32 +: 32];
        // The low ACC_WIDTH bits of a sum depend only on the low ACC_WIDTH bits of the
        // operands, so sign-extending (or truncating) bias to ACC_WIDTH and adding at ACC_WIDTH
        // is exactly wrap(acc + bias, ACC_WIDTH).
        assign t    = acc + ACC_WIDTH'(bias);
        // mult is unsigned: a zero bit in front makes it a non-negative signed operand.
        assign p_d  = PW'(t) * PW'($signed({1'b0, in_mult[i*16 +: 16]}));

        // Stage 1: the product (the multiplier's output register) and the lane's shift.
        always_ff @(posedge clk) begin
            if (load[0]) begin
                p_q     <= p_d;
                shift_q <= in_shift[i*6 +: 6];
            end
        end

        // floor((p + 2**(s-1)) / 2**s) = (p >>> s) + bit s-1 of p, so one arithmetic shift by
        // s-1 followed by a shift by one and an increment rounds without a 64-bit adder. Shifts
        // past the width fill with the sign bit, which gives 0 for any |p| < 2**(s-1), as the
        // reference does.
        assign half = p_q >>> (shift_q - 6'd1);
        always_comb begin
            if (shift_q == 6'd0) r = p_q;
            // $signed keeps the sum signed: one unsigned operand would make `>>>` logical.
            else                 r = (half >>> 1) + $signed(PW'(half[0]));
            if (r > OUT_MAX)      y_d = OUT_MAX[OUT_WIDTH-1:0];
            else if (r < OUT_MIN) y_d = OUT_MIN[OUT_WIDTH-1:0];
            else                  y_d = r[OUT_WIDTH-1:0];
        end

        // Stage 2: the saturated result, held while the consumer stalls.
        always_ff @(posedge clk) begin
            if (load[1]) y_q <= y_d;
        end
        assign out_data[i*OUT_WIDTH +: OUT_WIDTH] = y_q;
    end
endmodule
