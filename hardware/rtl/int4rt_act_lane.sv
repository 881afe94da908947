// int4rt sigmoid16 / tanh16 by table interpolation: docs/ARITHMETIC.md §6.3 and §6.4.
// One lane, combinational. The 256 x uint16 table (§6.2) lives outside the lane: the lane
// presents the index u (clamped to 254) and reads t_lo = T[u], t_hi = T[u+1] back.
module int4rt_act_lane (
    input  logic signed [15:0] x,          // int16 input
    input  logic        [15:0] mult,       // input scaling multiplier, [1, 65535]
    input  logic        [4:0]  shift,      // input scaling shift, [0, 31]
    input  logic               is_tanh,    // 0: sigmoid16 (§6.3), 1: tanh16 (§6.4)
    output logic        [7:0]  index,      // u, the table index to read (T[u], T[u+1])
    input  logic        [15:0] t_lo,       // T[u]
    input  logic        [15:0] t_hi,       // T[u+1]
    output logic signed [15:0] y           // Q0.15 output
);
    logic signed [47:0] scaled, rnd, v, a;
    logic        [22:0] u_wide;
    logic        [8:0]  f;
    logic               saturate;
    logic signed [47:0] interp, r;

    always @* begin
        // v = (x · mult + rnd) >> shift, round half up (33-bit signed in general)
        scaled = x * $signed({1'b0, mult});
        rnd    = (shift > 0) ? (48'sd1 <<< (shift - 5'd1)) : 48'sd0;
        v      = (scaled + rnd) >>> shift;
        a      = (v < 0) ? -v : v;
        // sigmoid: u = a >> 9, f = a & 511; tanh: u = a >> 8, f = a & 255
        u_wide   = is_tanh ? a[30:8] : {1'b0, a[30:9]};
        f        = is_tanh ? {1'b0, a[7:0]} : a[8:0];
        saturate = (u_wide >= 23'd255);
        index    = saturate ? 8'd254 : u_wide[7:0];
        interp   = $signed({1'b0, f}) * ($signed({1'b0, t_hi}) - $signed({1'b0, t_lo}));
        if (!is_tanh) begin
            r = saturate ? (48'sd32767 <<< 10) : (($signed({1'b0, t_lo}) <<< 9) + interp);
            r = (v >= 0) ? r + 48'sd512 : (48'sd1 <<< 25) - r + 48'sd511;
            y = r[25:10];                        // r >> 10, in [1, 32767]
        end else begin
            r = saturate ? (48'sd65535 <<< 8) : (($signed({1'b0, t_lo}) <<< 8) + interp);
            r = (v >= 0) ? r - (48'sd1 <<< 23) + 48'sd128 : -r + (48'sd1 <<< 23) + 48'sd127;
            y = r[23:8];                         // r >>> 8, in [-32767, 32767]
        end
    end
endmodule
