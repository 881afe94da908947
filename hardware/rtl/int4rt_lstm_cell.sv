// int4rt LSTM cell step for LANES cells: docs/ARITHMETIC.md §8.2 (pre = clamp(gx + gh)),
// §8.3 (gates, cell update, clip) and §8.4 (hidden code), built from int4rt_act_lane (§6)
// and int4rt_requant (§4, §7.1). The gate FC results come in: gx = input_proj row (§8.2)
// and gh = the requantized recurrent FC (§8.2), both int16 Q3.12.
// Bus layout: gate k (0 i, 1 f, 2 g, 3 o) of lane l at bits [16·(k·LANES + l) +: 16].
module int4rt_lstm_cell #(
    parameter int LANES = 16
) (
    input  logic                     clk,
    input  logic                     table_we,       // sigmoid table RAM write port (§6.2)
    input  logic [7:0]               table_addr,
    input  logic [15:0]              table_data,
    input  logic                     single_rounding,
    input  logic signed [5:0]        update_shift,   // −29 − p (§8.3), multiplier 2^30
    input  logic [15:0]              cell_mult,      // tanh_input_scaling(p) (§6.4)
    input  logic [4:0]               cell_shift,
    input  logic [15:0]              clip,           // cell clip in codes, 0 = none
    input  logic signed [31:0]       hidden_mult,    // Mo (§8.4)
    input  logic signed [5:0]        hidden_shift,   // so
    input  logic signed [31:0]       zp_h,           // hidden format: zero point, range
    input  logic signed [31:0]       qmin_h,
    input  logic signed [31:0]       qmax_h,
    input  logic [4*LANES*16-1:0]    gx,
    input  logic [4*LANES*16-1:0]    gh,
    input  logic [LANES*16-1:0]      c_prev,
    output logic [4*LANES*16-1:0]    pre,            // §8.2, int16 Q3.12
    output logic [4*LANES*16-1:0]    gate,           // §8.3: i, f, o sigmoid, g tanh, Q0.15
    output logic [LANES*16-1:0]      c,              // §8.3, int16 cell codes
    output logic [LANES*8-1:0]       h               // §8.4, hidden code (8-bit container)
);
    localparam logic signed [31:0] POW2_30 = 32'sh40000000;
    localparam logic signed [31:0] I16_MIN = -32'sd32768;
    localparam logic signed [31:0] I16_MAX = 32'sd32767;

    logic [15:0] table_mem [0:255];
    always_ff @(posedge clk)
        if (table_we) table_mem[table_addr] <= table_data;

    for (genvar l = 0; l < LANES; l++) begin : g_cell
        // §8.2: pre = clamp(gx + gh) per gate; §8.3: i, f, o = sigmoid16, g = tanh16 (3, 0)
        for (genvar k = 0; k < 4; k++) begin : g_gate
            localparam int BIT = 16 * (k * LANES + l);
            localparam logic IS_TANH = (k == 2);   // g = tanh16, i, f, o = sigmoid16
            logic signed [15:0] gx_k, gh_k, pre_k;
            logic signed [16:0] sum;
            logic [7:0]         index;
            assign gx_k  = gx[BIT +: 16];
            assign gh_k  = gh[BIT +: 16];
            assign sum   = gx_k + gh_k;
            assign pre_k = (sum > 17'sd32767) ? 16'sh7fff
                         : (sum < -17'sd32768) ? 16'sh8000 : sum[15:0];
            assign pre[BIT +: 16] = pre_k;
            int4rt_act_lane u_act (
                .x(pre_k), .mult(16'd3), .shift(5'd0), .is_tanh(IS_TANH),
                .index(index), .t_lo(table_mem[index]), .t_hi(table_mem[index + 8'd1]),
                .y(gate[BIT +: 16]));
        end

        logic signed [15:0] gi, gf, gg, go, cp, forget, update, c_new, t_c;
        logic signed [31:0] forget32, update32, h32, fc, ig, to;
        logic signed [63:0] unused_f, unused_u, unused_h;
        logic signed [16:0] c_sum;
        logic signed [15:0] c_sat, clip_s;
        logic [7:0]         t_index;
        assign gi = gate[16*(0*LANES + l) +: 16];
        assign gf = gate[16*(1*LANES + l) +: 16];
        assign gg = gate[16*(2*LANES + l) +: 16];
        assign go = gate[16*(3*LANES + l) +: 16];
        assign cp = c_prev[16*l +: 16];
        assign fc = gf * cp;                              // |·| <= 2^30
        assign ig = gi * gg;
        // §8.3: forget = clamp(requantize(f·c, 2^30, −14)), update likewise at (2^30, −29 − p)
        int4rt_requant u_forget (
            .acc(fc), .mult(POW2_30), .shift(-6'sd14), .single_rounding(single_rounding),
            .zp_y(32'sd0), .y_min(I16_MIN), .y_max(I16_MAX), .y(unused_f), .y_sat(forget32));
        int4rt_requant u_update (
            .acc(ig), .mult(POW2_30), .shift(update_shift), .single_rounding(single_rounding),
            .zp_y(32'sd0), .y_min(I16_MIN), .y_max(I16_MAX), .y(unused_u), .y_sat(update32));
        assign forget = forget32[15:0];
        assign update = update32[15:0];
        assign c_sum  = forget + update;
        assign c_sat  = (c_sum > 17'sd32767) ? 16'sh7fff
                      : (c_sum < -17'sd32768) ? 16'sh8000 : c_sum[15:0];
        assign clip_s = clip;
        assign c_new  = (clip == 16'd0) ? c_sat
                      : (c_sat > clip_s) ? clip_s
                      : (c_sat < -clip_s) ? -clip_s : c_sat;
        assign c[16*l +: 16] = c_new;
        // §8.4: h = clamp(requantize(tanh16(c) · o, Mo, so) + zp_h, qmin_h, qmax_h)
        int4rt_act_lane u_tanh_c (
            .x(c_new), .mult(cell_mult), .shift(cell_shift), .is_tanh(1'b1),
            .index(t_index), .t_lo(table_mem[t_index]), .t_hi(table_mem[t_index + 8'd1]),
            .y(t_c));
        assign to = t_c * go;
        int4rt_requant u_hidden (
            .acc(to), .mult(hidden_mult), .shift(hidden_shift),
            .single_rounding(single_rounding), .zp_y(zp_h), .y_min(qmin_h), .y_max(qmax_h),
            .y(unused_h), .y_sat(h32));
        assign h[8*l +: 8] = h32[7:0];
    end
endmodule
