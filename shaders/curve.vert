// curve.vert: instanced cubic Bezier curves, evaluated here from four control points per instance,
// expanded to a ribbon of constant pixel width (+1 px for anti-aliasing). One draw call for all.
//
// Per vertex:   a_tside    vec2  t in 0..1 along the curve, side -1 / +1 across it (triangle strip of
//                                32 segments; fewer are used where the curve is short on screen)
// Per instance: a_p01      vec4  control points P0, P1 (world)
//               a_p23      vec4  control points P2, P3 (world)
//               a_width    float width in pixels
//               a_values   vec3  signed weight -1..1, gradient 0..1, relative change 0..1
//               a_bundle   float bundle id (selection highlight)
//               a_color    vec4  literal colour: the line colour when u_mode == 3 (chart lines); in weight
//                                mode the hue when its alpha is > 0 (the layout's suggested colour)
//               a_ends     vec2  rectangles the curve leaves and enters (-1: none, e.g. chart lines)
// Texture:      t_rect_alpha sampler2D R32F, rect i's opacity at texel (i % u_alpha_size.x, i / .x): a
//                                curve is as faded as the more faded cluster it joins (class selection)
// Uniforms:     u_transform vec4, u_resolution vec2 (see common.glsl)
//               u_mode      int   0 weight (sign + strength), 1 gradient, 2 relative change, 3 literal
//               u_threshold float curves whose strength in the current mode is below it are culled
//               u_selected  vec2  two selected bundle ids (-1: none)
//               u_hover     float hovered bundle id (-1: none)
//               u_accent    vec4  selection colour
//               u_alpha_size vec2 size of t_rect_alpha in texels
#include "common.glsl"

attribute vec2 a_tside;
attribute vec4 a_p01;
attribute vec4 a_p23;
attribute float a_width;
attribute vec3 a_values;
attribute float a_bundle;
attribute vec4 a_color;
attribute vec2 a_ends;

uniform vec4 u_transform;
uniform vec2 u_resolution;
uniform int u_mode;
uniform float u_threshold;
uniform vec2 u_selected;
uniform float u_hover;
uniform vec4 u_accent;
uniform sampler2D t_rect_alpha;
uniform vec2 u_alpha_size;

varying float v_dist;      // signed distance from the centre line, px
varying float v_half;      // half width, px
varying vec4 v_color;

float rect_alpha(float i) {
    if (i < 0.0) return 1.0;
    float row = floor(i / u_alpha_size.x);
    vec2 uv = (vec2(i - row * u_alpha_size.x, row) + 0.5) / u_alpha_size;
    return texture2D(t_rect_alpha, uv).r;
}

const vec3 GREY = vec3(0.80, 0.81, 0.83);
const vec3 POS = vec3(0.0, 0.447, 0.698);  // positive weights: Okabe-Ito blue (as the layout's palette)
const vec3 NEG = vec3(0.835, 0.369, 0.0);  // negative weights: Okabe-Ito vermilion
const vec3 GRAD = vec3(0.70, 0.36, 0.66);    // gradient: purple, deeper than Okabe-Ito reddish purple (palette.GRADIENT)
const vec3 CHANGE = vec3(0.0, 0.62, 0.45);    // relative change: Okabe-Ito bluish green (palette.CHANGE)

void main() {
    float strength;
    vec3 rgb;
    if (u_mode == 0) {
        strength = abs(a_values.x);
        vec3 hue = a_color.a > 0.0 ? a_color.rgb : (a_values.x >= 0.0 ? POS : NEG);
        rgb = mix(GREY, hue, pow(strength, 0.6));
    } else if (u_mode == 1) {
        strength = a_values.y;
        rgb = mix(GREY, GRAD, pow(strength, 0.6));
    } else if (u_mode == 2) {
        strength = a_values.z;
        rgb = mix(GREY, CHANGE, pow(strength, 0.6));
    } else {
        strength = 1.0;
        rgb = a_color.rgb;
    }
    if (strength < u_threshold) {
        gl_Position = CULLED;
        return;
    }
    float alpha = (u_mode == 3 ? a_color.a : 0.35 + 0.6 * strength)
                  * min(rect_alpha(a_ends.x), rect_alpha(a_ends.y));
    float width = a_width;
    if (a_bundle >= 0.0 && (a_bundle == u_selected.x || a_bundle == u_selected.y)) {
        rgb = u_accent.rgb;
        alpha = 1.0;
        width += 2.0;
    } else if (a_bundle >= 0.0 && a_bundle == u_hover) {
        rgb *= 0.75;
        alpha = 1.0;
        width += 1.0;
    }

    vec2 p0 = a_p01.xy, p1 = a_p01.zw, p2 = a_p23.xy, p3 = a_p23.zw;
    // Level of detail: about one segment per 10 px of the control polygon (4..32). Vertices whose t
    // rounds to the same value coincide, and their zero-area triangles cost the rasterizer nothing.
    vec2 scale = abs(u_transform.xy);
    float len_px = length((p1 - p0) * scale) + length((p2 - p1) * scale) + length((p3 - p2) * scale);
    float n = clamp(ceil(len_px / 10.0), 4.0, 32.0);
    float t = floor(a_tside.x * n + 0.5) / n;
    float s = 1.0 - t;
    vec2 pos = s * s * s * p0 + 3.0 * s * s * t * p1 + 3.0 * s * t * t * p2 + t * t * t * p3;
    vec2 deriv = 3.0 * s * s * (p1 - p0) + 6.0 * s * t * (p2 - p1) + 3.0 * t * t * (p3 - p2);
    vec2 pixel = to_pixel(pos, u_transform);
    vec2 dir = deriv * u_transform.xy;                 // tangent in pixel space
    if (dot(dir, dir) < 1e-12) dir = (p3 - p0) * u_transform.xy;
    if (dot(dir, dir) < 1e-12) dir = vec2(1.0, 0.0);
    vec2 normal = normalize(vec2(-dir.y, dir.x));
    // Lines thinner than a pixel keep one pixel of ribbon and fade instead.
    float half_w = max(0.5 * width, 0.5);
    alpha *= min(width, 1.0);
    v_half = half_w;
    v_dist = a_tside.y * (half_w + 1.0);
    v_color = vec4(rgb, alpha);
    gl_Position = pixel_to_clip(pixel + normal * v_dist, u_resolution);
}
