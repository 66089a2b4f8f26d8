#version 330 core
// The body's vertex shader (renderer/scene.py, MatteShaders): pyrender's mesh.vert without the per-vertex
// matrix inverse, which the body does not need (its node is never scaled or sheared).
layout(location = 0) in vec3 position;
layout(location = NORMAL_LOC) in vec3 normal;
layout(location = INST_M_LOC) in mat4 inst_m;

uniform mat4 M;
uniform mat4 V;
uniform mat4 P;

out vec3 frag_normal;

void main()
{
    mat4 model = M * inst_m;
    gl_Position = P * V * model * vec4(position, 1.0);
    frag_normal = mat3(model) * normal;
}
