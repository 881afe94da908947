// Test-bench top for the int4rt reference datapath: the four units side by side, each with
// its own ports (prefix rq_ requantization §4, act_ sigmoid/tanh §6, mac4_/mac8_ MAC rows
// §7.1 with int4 and int8 weights, cell_ LSTM cell step §8.2–§8.4). Not a design in itself.
module int4rt_rtl_top #(
    parameter int LANES = 16
) (
    input  logic                   clk,
    // requantization bank (§4, §7.1)
    input  logic [LANES*32-1:0]    rq_acc,
    input  logic [LANES*32-1:0]    rq_mult,
    input  logic [LANES*6-1:0]     rq_shift,
    input  logic                   rq_single_rounding,
    input  logic signed [31:0]     rq_zp_y,
    input  logic signed [31:0]     rq_y_min,
    input  logic signed [31:0]     rq_y_max,
    output logic [LANES*64-1:0]    rq_y,
    output logic [LANES*32-1:0]    rq_y_sat,
    // sigmoid16 / tanh16 (§6)
    input  logic                   act_table_we,
    input  logic [7:0]             act_table_addr,
    input  logic [15:0]            act_table_data,
    input  logic [LANES*16-1:0]    act_x,
    input  logic [15:0]            act_mult,
    input  logic [4:0]             act_shift,
    input  logic                   act_is_tanh,
    output logic [LANES*16-1:0]    act_y,
    // MAC rows (§5, §7.1)
    input  logic                   mac_start,
    input  logic                   mac_en,
    input  logic signed [31:0]     mac_bias,
    input  logic [LANES*4-1:0]     mac4_w,
    input  logic [LANES*8-1:0]     mac8_w,
    input  logic [LANES*8-1:0]     mac_x,
    input  logic                   mac_x_signed,
    input  logic signed [9:0]      mac_zp_x,
    output logic signed [31:0]     mac4_acc,
    output logic signed [31:0]     mac8_acc,
    // LSTM cell step (§8.2–§8.4)
    input  logic                   cell_table_we,
    input  logic [7:0]             cell_table_addr,
    input  logic [15:0]            cell_table_data,
    input  logic                   cell_single_rounding,
    input  logic signed [5:0]      cell_update_shift,
    input  logic [15:0]            cell_cell_mult,
    input  logic [4:0]             cell_cell_shift,
    input  logic [15:0]            cell_clip,
    input  logic signed [31:0]     cell_hidden_mult,
    input  logic signed [5:0]      cell_hidden_shift,
    input  logic signed [31:0]     cell_zp_h,
    input  logic signed [31:0]     cell_qmin_h,
    input  logic signed [31:0]     cell_qmax_h,
    input  logic [4*LANES*16-1:0]  cell_gx,
    input  logic [4*LANES*16-1:0]  cell_gh,
    input  logic [LANES*16-1:0]    cell_c_prev,
    output logic [4*LANES*16-1:0]  cell_pre,
    output logic [4*LANES*16-1:0]  cell_gate,
    output logic [LANES*16-1:0]    cell_c,
    output logic [LANES*8-1:0]     cell_h
);
    for (genvar l = 0; l < LANES; l++) begin : g_rq
        int4rt_requant u_rq (
            .acc(rq_acc[32*l +: 32]), .mult(rq_mult[32*l +: 32]), .shift(rq_shift[6*l +: 6]),
            .single_rounding(rq_single_rounding), .zp_y(rq_zp_y), .y_min(rq_y_min),
            .y_max(rq_y_max), .y(rq_y[64*l +: 64]), .y_sat(rq_y_sat[32*l +: 32]));
    end

    int4rt_activation #(.LANES(LANES)) u_act (
        .clk(clk), .table_we(act_table_we), .table_addr(act_table_addr),
        .table_data(act_table_data), .x(act_x), .mult(act_mult), .shift(act_shift),
        .is_tanh(act_is_tanh), .y(act_y));

    int4rt_mac_row #(.LANES(LANES), .WBITS(4)) u_mac4 (
        .clk(clk), .start(mac_start), .en(mac_en), .bias(mac_bias), .w(mac4_w), .x(mac_x),
        .x_signed(mac_x_signed), .zp_x(mac_zp_x), .acc(mac4_acc));
    int4rt_mac_row #(.LANES(LANES), .WBITS(8)) u_mac8 (
        .clk(clk), .start(mac_start), .en(mac_en), .bias(mac_bias), .w(mac8_w), .x(mac_x),
        .x_signed(mac_x_signed), .zp_x(mac_zp_x), .acc(mac8_acc));

    int4rt_lstm_cell #(.LANES(LANES)) u_cell (
        .clk(clk), .table_we(cell_table_we), .table_addr(cell_table_addr),
        .table_data(cell_table_data), .single_rounding(cell_single_rounding),
        .update_shift(cell_update_shift), .cell_mult(cell_cell_mult),
        .cell_shift(cell_cell_shift), .clip(cell_clip), .hidden_mult(cell_hidden_mult),
        .hidden_shift(cell_hidden_shift), .zp_h(cell_zp_h), .qmin_h(cell_qmin_h),
        .qmax_h(cell_qmax_h), .gx(cell_gx), .gh(cell_gh), .c_prev(cell_c_prev),
        .pre(cell_pre), .gate(cell_gate), .c(cell_c), .h(cell_h));
endmodule
