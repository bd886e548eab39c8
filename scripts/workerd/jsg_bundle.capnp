@0xd6e9a2c8f1b47e53;
# workerd's module bundle format, for the Pyodide runtime bundle that
# scripts/workerd/pyodide_bundle.py builds. Field ordinals and types follow
# workerd's `jsg::Bundle` (cloudflare/workerd src/workerd/jsg/modules.capnp):
# only ordinals and types reach the wire, so this schema of ours reads and
# writes the same bytes.

struct Bundle {
  modules @0 :List(Module);
}

struct Module {
  name @0 :Text;
  union {
    src @1 :Data;
    wasm @4 :Data;
    data @5 :Data;
    json @6 :Text;
  }
  tsDeclaration @3 :Text;
  type @2 :ModuleType;
  compileCache @7 :Data;
}

enum ModuleType {
  bundle @0;
  builtin @1;
  internal @2;
}
