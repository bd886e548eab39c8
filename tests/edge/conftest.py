"""These tests import durable_objects/ and worker/ in-process: `import workers`
must find the local runtime's SDK, exactly as the runtime provides it."""
from src.localedge.sdk import install

install()
