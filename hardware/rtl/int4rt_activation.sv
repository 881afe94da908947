// LANES parallel sigmoid16/tanh16 lanes (docs/ARITHMETIC.md §6.3, §6.4) sharing one table
// RAM of 256 x uint16 (§6.2). Tables are data: load the model's table through the write
// port (e.g. from tables/sigmoid.hex), never regenerate it.
module int4rt_activation #(
    parameter int LANES = 16
) (
    input  logic                    clk,
    input  logic                    table_we,     // write T[table_addr] = table_data
    input  logic [7:0]              table_addr,
    input  logic [15:0]             table_data,
    input  logic [LANES*16-1:0]     x,            // lane l: bits [16l +: 16], int16
    input  logic [15:0]             mult,
    input  logic [4:0]              shift,
    input  logic                    is_tanh,
    output logic [LANES*16-1:0]     y             // lane l: bits [16l +: 16], int16 Q0.15
);
    logic [15:0] table_mem [0:255];

    always_ff @(posedge clk)
        if (table_we) table_mem[table_addr] <= table_data;

    for (genvar l = 0; l < LANES; l++) begin : g_lane
        logic [7:0] index;
        int4rt_act_lane u_lane (
            .x(x[16*l +: 16]), .mult(mult), .shift(shift), .is_tanh(is_tanh),
            .index(index), .t_lo(table_mem[index]), .t_hi(table_mem[index + 8'd1]),
            .y(y[16*l +: 16]));
    end
endmodule
