"""Configurations: the published ones, and reading a user's (published sampling YAML or JSON).

A configuration has three parts, named as in the published code:
``unet_config`` (the diffusion UNet), ``backbone_config`` (the estimator whose output is
diffused: SwinIR for restoration, LaMa's FFCResNetGenerator for inpainting; the published
YAML's ``model_ir``) and ``diffusion_config`` (the noise schedule and its respacing), plus
optional ``sampling`` defaults. ``task`` says which method the networks serve:
"restoration" (the default) or "inpainting".
"""

import copy
import json
import os
import re

from errors import ConvertError

# The published DifFace restoration configuration (configs/sample/iddpm_ffhq512_swinir.yaml,
# with the respacing the published inference tool sets: 'ddim250').
PUBLISHED = {
    "unet_config": {
        "image_size": 512,
        "in_channels": 3,
        "model_channels": 32,
        "out_channels": 6,
        "attention_resolutions": [32, 16, 8],
        "dropout": 0,
        "channel_mult": [1, 2, 4, 8, 8, 16, 16],
        "num_res_blocks": [1, 2, 2, 2, 2, 3, 4],
        "conv_resample": True,
        "dims": 2,
        "use_fp16": False,
        "num_head_channels": 64,
        "use_scale_shift_norm": True,
        "resblock_updown": False,
        "use_new_attention_order": False,
    },
    "backbone_config": {
        "img_size": 64,
        "patch_size": 1,
        "in_chans": 3,
        "embed_dim": 180,
        "depths": [6, 6, 6, 6, 6, 6, 6, 6],
        "num_heads": [6, 6, 6, 6, 6, 6, 6, 6],
        "window_size": 8,
        "mlp_ratio": 2,
        "sf": 8,
        "img_range": 1.0,
        "upsampler": "nearest+conv",
        "resi_connection": "1conv",
        "unshuffle": True,
        "unshuffle_scale": 8,
    },
    "diffusion_config": {
        "steps": 1000,
        "learn_sigma": True,
        "sigma_small": False,
        "noise_schedule": "linear",
        "use_kl": False,
        "predict_xstart": False,
        "rescale_timesteps": False,
        "rescale_learned_sigmas": True,
        "timestep_respacing": "ddim250",
    },
    "sampling": {"start_step": 100, "eta": 0.5, "image_size": 512},
}

# The published DifFace inpainting configuration (configs/sample/difface_inpainting_lama256.yaml,
# with the respacing and the settings the published inference tool uses for inpainting:
# 'ddim250', start step 120, eta 1 and gamma 0.5).
INPAINTING = {
    "task": "inpainting",
    "unet_config": {
        "image_size": 256,
        "in_channels": 3,
        "model_channels": 128,
        "out_channels": 6,
        "attention_resolutions": [16, 8],
        "dropout": 0,
        "channel_mult": [1, 1, 2, 2, 4, 4],
        "num_res_blocks": 2,
        "conv_resample": True,
        "dims": 2,
        "use_fp16": False,
        "num_head_channels": 64,
        "use_scale_shift_norm": True,
        "resblock_updown": False,
        "use_new_attention_order": False,
    },
    "backbone_config": {
        "input_nc": 4,
        "output_nc": 3,
        "ngf": 64,
        "n_downsampling": 3,
        "n_blocks": 18,
        "add_out_act": "sigmoid",
        "init_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0, "enable_lfu": False},
        "downsample_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0, "enable_lfu": False},
        "resnet_conv_kwargs": {"ratio_gin": 0.75, "ratio_gout": 0.75, "enable_lfu": False},
    },
    "diffusion_config": {
        "steps": 1000,
        "learn_sigma": True,
        "sigma_small": False,
        "noise_schedule": "linear",
        "use_kl": False,
        "predict_xstart": False,
        "rescale_timesteps": False,
        "rescale_learned_sigmas": False,
        "timestep_respacing": "ddim250",
    },
    "sampling": {"start_step": 120, "eta": 1.0, "gamma": 0.5, "image_size": 256},
}

TASKS = ("restoration", "inpainting")

UNET_KEYS = {
    "image_size", "in_channels", "model_channels", "out_channels", "num_res_blocks",
    "attention_resolutions", "dropout", "channel_mult", "conv_resample", "dims", "num_classes",
    "use_fp16", "num_heads", "num_head_channels", "num_heads_upsample", "use_scale_shift_norm",
    "resblock_updown", "use_new_attention_order", "use_checkpoint",
}
UNET_REQUIRED = {"image_size", "in_channels", "model_channels", "out_channels", "num_res_blocks",
                 "attention_resolutions"}
BACKBONE_KEYS = {
    "img_size", "patch_size", "in_chans", "embed_dim", "depths", "num_heads", "window_size",
    "mlp_ratio", "qkv_bias", "qk_scale", "drop_rate", "attn_drop_rate", "drop_path_rate", "ape",
    "patch_norm", "use_checkpoint", "sf", "img_range", "upsampler", "resi_connection", "unshuffle",
    "unshuffle_scale",
}
DIFFUSION_KEYS = {
    "steps", "learn_sigma", "sigma_small", "noise_schedule", "use_kl", "predict_xstart",
    "rescale_timesteps", "rescale_learned_sigmas", "timestep_respacing",
}
LAMA_KEYS = {
    "input_nc", "output_nc", "ngf", "n_downsampling", "n_blocks", "padding_type", "add_out_act", "max_features",
    "init_conv_kwargs", "downsample_conv_kwargs", "resnet_conv_kwargs", "spatial_transform_layers", "out_ffc",
}
LAMA_REQUIRED = {"input_nc", "output_nc"}
SAMPLING_KEYS = {"start_step", "eta", "gamma", "image_size"}


def published(task="restoration"):
    return copy.deepcopy(INPAINTING if task == "inpainting" else PUBLISHED)


def task_of(config):
    return config.get("task", "restoration")


def backbone_channels(config):
    """The channels the backbone takes: the image's, and for inpainting the mask's after them."""
    backbone = config["backbone_config"]
    return int(backbone["input_nc"]) if task_of(config) == "inpainting" else int(backbone.get("in_chans", 3))


def _check_keys(section, values, allowed, required, source):
    if not isinstance(values, dict):
        raise ConvertError("ECONFIG", f"{source}: '{section}' must be a mapping of parameter names to values")
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConvertError("ECONFIG", f"{source}: '{section}' has parameters this converter does not know: "
                                      f"{', '.join(unknown)}; check their spelling")
    missing = sorted(required - set(values))
    if missing:
        raise ConvertError("ECONFIG", f"{source}: '{section}' lacks {', '.join(missing)}")


INTERPOLATION = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")


def _resolved(value, document, source, depth=0):
    """OmegaConf's "${a.b.c}" references, as the published inpainting YAML uses them, replaced by their values."""
    if isinstance(value, dict):
        return {key: _resolved(item, document, source, depth) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, document, source, depth) for item in value]
    match = INTERPOLATION.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    if depth > 16:
        raise ConvertError("ECONFIG", f"{source}: the reference {value} refers to itself")
    target = document
    for part in match.group(1).split("."):
        if not isinstance(target, dict) or part not in target:
            raise ConvertError("ECONFIG", f"{source}: the reference {value} names nothing in the file")
        target = target[part]
    return _resolved(target, document, source, depth + 1)


def _from_published_yaml(document, source):
    """The published sampling YAML keeps the parameters under model / model_ir / diffusion."""
    try:
        unet = document["model"]["params"]
        backbone = _resolved(document["model_ir"]["params"], document, source)
        diffusion = dict(document["diffusion"]["params"])
    except (KeyError, TypeError):
        raise ConvertError("ECONFIG", f"{source}: a YAML configuration must have model.params, "
                                      "model_ir.params and diffusion.params, as the published sampling YAML has")
    task = "inpainting" if str(document["model_ir"].get("target", "")).endswith("FFCResNetGenerator") else "restoration"
    # The published inference tool replaces the YAML's respacing ("250") with DDIM striding.
    if not str(diffusion.get("timestep_respacing", "")).startswith("ddim"):
        diffusion["timestep_respacing"] = "ddim250"
    sampling = dict(published(task)["sampling"])
    if task == "inpainting":
        sampling["image_size"] = int(unet.get("image_size", sampling["image_size"]))
    elif "im_size" in document:
        sampling["image_size"] = int(document["im_size"])
    return {"task": task, "unet_config": dict(unet), "backbone_config": dict(backbone), "diffusion_config": diffusion,
            "sampling": sampling}


def load(path):
    """Reads a configuration file and returns it checked, with defaults filled in."""
    if path is None:
        return published()
    if not os.path.isfile(path):
        raise ConvertError("ECONFIG", f"the configuration file '{path}' does not exist")
    with open(path, "r", encoding="utf-8") as handle:
        text = handle.read()
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ConvertError("EPYTHON", "reading a YAML configuration needs PyYAML: "
                                          "apt-get install python3-yaml (or use a JSON configuration)")
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConvertError("ECONFIG", f"{path} is not valid YAML: {error}")
        config = _from_published_yaml(document, path)
    else:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConvertError("ECONFIG", f"{path} is not valid JSON: {error}")
        if not isinstance(document, dict):
            raise ConvertError("ECONFIG", f"{path} must hold a JSON object")
        config = {key: document.get(key) for key in ("unet_config", "backbone_config", "diffusion_config")}
        missing = [key for key, value in config.items() if value is None]
        if missing:
            raise ConvertError("ECONFIG", f"{path} lacks {', '.join(missing)}")
        task = document.get("task", "restoration")
        if task not in TASKS:
            raise ConvertError("ECONFIG", f"{path}: 'task' must be one of {', '.join(TASKS)}, got {task!r}")
        if task != "restoration":
            config["task"] = task
        defaults = published(task)["sampling"]
        sampling = dict(defaults, image_size=config["unet_config"].get("image_size"))
        given = document.get("sampling") or {}
        if not isinstance(given, dict):
            raise ConvertError("ECONFIG", f"{path}: 'sampling' must be an object")
        sampling.update({key: given[key] for key in SAMPLING_KEYS if key in given})
        config["sampling"] = {key: sampling[key] for key in defaults}
    return check(config, path)


def check(config, source="configuration"):
    inpainting = task_of(config) == "inpainting"
    _check_keys("unet_config", config["unet_config"], UNET_KEYS, UNET_REQUIRED, source)
    if inpainting:
        _check_keys("backbone_config", config["backbone_config"], LAMA_KEYS, LAMA_REQUIRED, source)
    else:
        _check_keys("backbone_config", config["backbone_config"], BACKBONE_KEYS, set(), source)
    _check_keys("diffusion_config", config["diffusion_config"], DIFFUSION_KEYS, {"steps"}, source)
    diffusion = config["diffusion_config"]
    if diffusion.get("predict_xstart", False):
        raise ConvertError("ECONFIG", f"{source}: diffusion_config.predict_xstart is true; DifFace's sampler "
                                      "needs a UNet that predicts the noise (eps)")
    if diffusion.get("noise_schedule", "linear") not in ("linear", "cosine"):
        raise ConvertError("ECONFIG", f"{source}: diffusion_config.noise_schedule must be 'linear' or 'cosine'")
    unet, backbone = config["unet_config"], config["backbone_config"]
    if inpainting:
        if backbone["output_nc"] != unet["in_channels"] or backbone["input_nc"] != unet["in_channels"] + 1:
            raise ConvertError("ECONFIG", f"{source}: the LaMa estimator must take the image and its mask "
                                          f"({unet['in_channels'] + 1} channels) and make the UNet's "
                                          f"{unet['in_channels']}, got input_nc {backbone['input_nc']} and "
                                          f"output_nc {backbone['output_nc']}")
    elif unet["in_channels"] != backbone.get("in_chans", 3):
        raise ConvertError("ECONFIG", f"{source}: the UNet takes {unet['in_channels']} channels but the "
                                      f"backbone makes {backbone.get('in_chans', 3)}")
    if unet["out_channels"] not in (unet["in_channels"], 2 * unet["in_channels"]):
        raise ConvertError("ECONFIG", f"{source}: unet_config.out_channels must be in_channels (eps) or twice "
                                      "that (eps and learned variance)")
    sampling = config["sampling"]
    if int(sampling["image_size"]) != int(unet["image_size"]):
        raise ConvertError("ECONFIG", f"{source}: the sampling image size {sampling['image_size']} differs from "
                                      f"unet_config.image_size {unet['image_size']}")
    if inpainting and not 0 <= float(sampling.get("gamma", 0.5)) <= 1:
        raise ConvertError("ECONFIG", f"{source}: sampling.gamma must be between 0 and 1")
    return config


def sampling_settings(config):
    """The sampling defaults in the model card's words."""
    sampling = config["sampling"]
    settings = {"startStep": int(sampling["start_step"]), "eta": float(sampling["eta"]),
                "imageSize": int(sampling["image_size"])}
    if task_of(config) == "inpainting":
        settings["gamma"] = float(sampling.get("gamma", INPAINTING["sampling"]["gamma"]))
    return settings


def schedule_settings(diffusion):
    """The part of diffusion_config the engine's schedule needs, in the model card's words."""
    return {
        "steps": int(diffusion["steps"]),
        "noiseSchedule": diffusion.get("noise_schedule", "linear"),
        "respacing": str(diffusion.get("timestep_respacing", "") or ""),
        "rescaleTimesteps": bool(diffusion.get("rescale_timesteps", False)),
    }
