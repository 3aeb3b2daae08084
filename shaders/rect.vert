// rect.vert: instanced rectangles (layer-cluster columns, neuron clusters, UI widgets), one draw call.
//
// Per vertex:   a_corner   vec2  quad corner in {0,1}^2 (4-vertex triangle strip)
// Per instance: a_box      vec4  x0, y0, x1, y1 in world units (or pixels when u_transform is identity)
//               a_fill     vec4  RGBA fill
//               a_border   vec4  RGBA border
//               a_info     vec4  kind (0 column, 1 cluster, 2 widget), importance 0..1, corner radius px,
//                                border width px
//               a_state    vec4  opacity 0..1, highlight 0..1, facet (0 features, 1 matrix, 2 importance),
//                                unused                          [dynamic buffer: view state only]
// Uniforms:     u_transform vec4, u_resolution vec2 (see common.glsl)
//               u_accent    vec4  highlight / importance colour
#include "common.glsl"

attribute vec2 a_corner;
attribute vec4 a_box;
attribute vec4 a_fill;
attribute vec4 a_border;
attribute vec4 a_info;
attribute vec4 a_state;

uniform vec4 u_transform;
uniform vec2 u_resolution;

varying vec2 v_local;      // pixel offset from the box centre
varying vec2 v_half;       // half size in pixels
varying vec4 v_fill;
varying vec4 v_border;
varying vec4 v_info;
varying vec4 v_state;

void main() {
    vec2 p0 = to_pixel(a_box.xy, u_transform);
    vec2 p1 = to_pixel(a_box.zw, u_transform);
    vec2 lo = min(p0, p1);
    vec2 hi = max(p0, p1);
    // One pixel of margin so the anti-aliased edge is not clipped by the quad.
    vec2 pixel = mix(lo - 1.0, hi + 1.0, a_corner);
    v_half = 0.5 * (hi - lo);
    v_local = pixel - 0.5 * (lo + hi);
    v_fill = a_fill;
    v_border = a_border;
    v_info = a_info;
    v_state = a_state;
    gl_Position = a_state.x <= 0.0 ? CULLED : pixel_to_clip(pixel, u_resolution);
}
