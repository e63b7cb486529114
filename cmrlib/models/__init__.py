"""Model zoo (manifest + safetensors + sha256) and architecture registry."""
from .registry import architectures, build_architecture, register_architecture
from .zoo import (MANIFEST, PHANTOM_NOTICE, ModelEntry, bundled_models_dir, find_model, list_models,
                  load_model, loaded_models, clear_model_cache, model_dirs, read_manifest, save_model, sha256_of, verify)

__all__ = [
    "architectures", "build_architecture", "register_architecture",
    "MANIFEST", "PHANTOM_NOTICE", "ModelEntry", "bundled_models_dir", "find_model", "list_models",
    "load_model", "loaded_models", "clear_model_cache", "model_dirs", "read_manifest", "save_model", "sha256_of", "verify",
]
