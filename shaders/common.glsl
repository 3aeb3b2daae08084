// common.glsl: shared helpers, included by the vertex shaders (expanded by cnnvis/gl/_shaders.py).
//
// Uniforms every vertex shader that includes this file must declare:
//   u_transform  vec4  world -> canvas pixels: pixel = pos * u_transform.xy + u_transform.zw
//   u_resolution vec2  canvas size in pixels (origin bottom-left, y up)
#ifndef CNNVIS_COMMON_GLSL
#define CNNVIS_COMMON_GLSL

vec2 to_pixel(vec2 world, vec4 transform) {
    return world * transform.xy + transform.zw;
}

vec4 pixel_to_clip(vec2 pixel, vec2 resolution) {
    return vec4(2.0 * pixel / resolution - 1.0, 0.0, 1.0);
}

// A clip position outside the view: all vertices of a filtered instance collapse there.
const vec4 CULLED = vec4(2.0, 2.0, 2.0, 1.0);

#endif
