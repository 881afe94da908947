// int4rt requantization unit: docs/ARITHMETIC.md §4 (SRDHM §4.1, RDBPOT §4.2,
// double rounding §4.3, single rounding §4.4) and the output stage of §7.1
// (add the output zero point, clamp to [y_min, y_max]).
// Purely combinational; one accumulator per instance.
module int4rt_requant (
    input  logic signed [31:0] acc,              // §4 domain: int32 accumulator
    input  logic signed [31:0] mult,             // M, any int32
    input  logic signed [5:0]  shift,            // s in [-31, 30]
    input  logic               single_rounding,  // 0: double (§4.3), 1: single (§4.4)
    input  logic signed [31:0] zp_y,             // §7.1 output zero point
    input  logic signed [31:0] y_min,            // §7.1 output range
    input  logic signed [31:0] y_max,
    output logic signed [63:0] y,                // requantize(acc, M, s), not clamped
    output logic signed [31:0] y_sat             // clamp(y + zp_y, y_min, y_max)
);
    logic [5:0]         left, right;             // max(s, 0), max(-s, 0)
    logic signed [63:0] acc_wide, shifted, prod, h, mask, rem, threshold, q;
    logic signed [31:0] x;
    logic signed [63:0] single_prod, single_y, with_zp;

    always @* begin
        left  = (shift > 0) ? shift : 6'd0;
        right = (shift < 0) ? -shift : 6'd0;
        // §4.3: x = wrap32(acc << left), the low 32 bits read as two's complement
        acc_wide = acc;                  // sign-extended
        shifted  = acc_wide <<< left;
        x        = shifted[31:0];
        // §4.1 SRDHM: (x·M + 2^30) >> 31, except -2^31 · -2^31 which saturates
        prod = x * mult;                 // 64-bit signed product (context width)
        if (x == 32'sh80000000 && mult == 32'sh80000000)
            h = 64'sd2147483647;
        else
            h = (prod + 64'sd1073741824) >>> 31;
        // §4.2 RDBPOT(h, right): round half away from zero
        mask      = (64'sd1 <<< right) - 64'sd1;
        rem       = h & mask;
        threshold = (mask >>> 1) + ((h < 0) ? 64'sd1 : 64'sd0);
        q         = (h >>> right) + ((rem > threshold) ? 64'sd1 : 64'sd0);
        // §4.4: (acc·M + 2^(30-s)) >> (31-s), one rounding half up, no wrap
        single_prod = acc * mult;
        single_y    = (single_prod + (64'sd1 <<< (6'd30 - shift))) >>> (6'd31 - shift);
        y = single_rounding ? single_y : q;
        // §7.1: add zp_y to the exact integer, then clamp
        with_zp = y + zp_y;
        if (with_zp < y_min)      y_sat = y_min;
        else if (with_zp > y_max) y_sat = y_max;
        else                      y_sat = with_zp[31:0];
    end
endmodule
