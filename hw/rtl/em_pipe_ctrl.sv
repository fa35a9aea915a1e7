// em_pipe_ctrl: valid/ready control of a STAGES-deep pipeline.
//
// The datapath keeps one register bank per stage and loads stage s when load[s] is high; this
// module decides when. A full stage frees up in the same cycle as its contents move on, so a
// stage is blocked only when it and every stage after it are full and the consumer stalls:
// bubbles collapse, back-pressure loses nothing, and throughput is one item per cycle.
// in_ready depends combinationally on out_ready (an AND-OR chain of STAGES terms), which avoids
// a skid buffer. Only the valid bits are reset: the data registers are qualified by them.
module em_pipe_ctrl #(
    parameter int STAGES = 2
) (
    input  logic              clk,
    input  logic              rst,        // synchronous, active high
    input  logic              in_valid,
    output logic              in_ready,
    output logic              out_valid,
    input  logic              out_ready,
    output logic [STAGES-1:0] load        // stage s takes an item this cycle
);
    logic [STAGES-1:0] valid;   // stage s holds an item
    logic [STAGES-1:0] free;    // stage s can take an item this cycle
    logic [STAGES-1:0] feed;    // an item is offered to stage s

    if (STAGES == 1) begin : g_one
        assign feed = in_valid;
    end else begin : g_many
        assign feed = {valid[STAGES-2:0], in_valid};
    end
    for (genvar s = 0; s < STAGES; s++) begin : g_free
        assign free[s] = out_ready || !(&valid[STAGES-1:s]);
    end
    assign load      = feed & free;
    assign in_ready  = free[0];
    assign out_valid = valid[STAGES-1];

    always_ff @(posedge clk) begin
        if (rst) valid <= '0;
        else     valid <= (valid & ~free) | load;
    end
endmodule
