// int4rt MAC row: docs/ARITHMETIC.md §7.1 (acc = bias + Σ_k w[k] · (x[k] − zp_x)) with the
// int4 weight packing of §5 and the accumulator rules of §7.1/§7.2.
// LANES products per clock, summed exactly and added to an int32 accumulator register.
// Weights: WBITS = 4 (int4 codes, lane l in bits [4l +: 4]: for LANES even this is exactly
// the packed byte stream of §5, code 2j in the low nibble of byte j) or WBITS = 8 (int8).
// Activations: 8-bit containers, int8 (x_signed = 1: int8 or int4 codes) or uint8
// (x_signed = 0: uint8 or uint4 codes); d = x − zp_x is 9-bit signed (§7.1).
// A row of K inputs takes ceil(K / LANES) beats; pad the last beat with w = 0.
module int4rt_mac_row #(
    parameter int LANES = 16,
    parameter int WBITS = 4
) (
    input  logic                     clk,
    input  logic                     start,     // this beat starts a row: acc = bias + Σ
    input  logic                     en,        // accumulate this beat's products
    input  logic signed [31:0]       bias,
    input  logic [LANES*WBITS-1:0]   w,
    input  logic [LANES*8-1:0]       x,
    input  logic                     x_signed,
    input  logic signed [9:0]        zp_x,      // in the container's range
    output logic signed [31:0]       acc
);
    // |w · d| <= 128 · 255 per lane; the beat sum needs 16 + clog2(LANES) bits.
    localparam int SUM_BITS = 17 + $clog2(LANES);

    logic signed [SUM_BITS-1:0] product [LANES];
    logic signed [SUM_BITS-1:0] beat_sum;
    logic signed [31:0]         beat_sum32;

    for (genvar l = 0; l < LANES; l++) begin : g_lane
        logic signed [WBITS-1:0] wl;
        logic signed [9:0]       xl, d;
        assign wl = w[WBITS*l +: WBITS];
        assign xl = x_signed ? {{2{x[8*l + 7]}}, x[8*l +: 8]} : {2'b00, x[8*l +: 8]};
        assign d  = xl - zp_x;                                // [−255, 255]
        assign product[l] = wl * d;                           // |·| <= 128 · 255
    end

    always @* begin
        beat_sum = '0;
        for (int l = 0; l < LANES; l++) beat_sum = beat_sum + product[l];
        beat_sum32 = beat_sum;                                // sign-extended
    end

    // The final sum of a valid layer fits int32 (§7.1 guard); partial sums may wrap.
    always_ff @(posedge clk) begin
        if (start)   acc <= bias + (en ? beat_sum32 : 32'sd0);
        else if (en) acc <= acc + beat_sum32;
    end
endmodule
