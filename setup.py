from setuptools import find_packages, setup

TORCH = ["torch==2.14.1", "torchvision==0.29.1"]  # torchvision: segment_anything and groundingdino import it
TRANSFORMERS = ["transformers==5.23.0", "tokenizers==0.23.3", "huggingface-hub==2.4.0"]

EXTRAS = {
    # onnx*: the `onnx-int8` runtime, HED quantized on ONNX Runtime (edges/hed_onnx.py), the CPU default
    "hed": TORCH + ["safetensors>=0.4", "h5py>=3.10", "onnxruntime==1.31.1", "onnx==1.23.2"],
    # onnx*: SAM's mask decoder runs on ONNX Runtime on a CPU (segment/sam_onnx.py), ~1.7x faster per click
    "sam": TORCH + ["segment-anything==1.0", "onnxruntime==1.31.1", "onnx==1.23.2", "onnxscript==0.7.2"],
    "detect": TORCH + TRANSFORMERS + ["groundingdino-py==0.4.0", "timm==1.0.31", "supervision==0.6.0",
                                      "pycocotools", "addict", "yapf"],
    "diffusion": TORCH + TRANSFORMERS + ["diffusers==0.42.1", "accelerate>=1.0", "safetensors>=0.4",
                                         # peft: diffusers' LoRA loader; scipy: the LMS sampler
                                         "peft>=0.17", "scipy"],
    "caption": TORCH + TRANSFORMERS + ["safetensors>=0.4"],
    # SAM 2.1 and SAM 3 run on transformers alone (segment/sam2_hf.py, detect/sam3.py); EdgeTAM's
    # RepViT-M1 encoder is a timm model inside transformers' TimmWrapper
    "sam2": TORCH + TRANSFORMERS + ["safetensors>=0.4", "timm==1.0.31"],
    # prompt expansion with a local language model (prompting/local.py); the rules need none of it
    "prompt": TORCH + TRANSFORMERS + ["safetensors>=0.4"],
    "ui": ["gradio==6.31.0"],
    # `editanything serve`: the WebUI's HTTP API alone (gradio brings both for `ui --api`)
    "api": ["fastapi>=0.115", "uvicorn>=0.30"],
    # the second batch engine (`--engine ray`): Ray Data actors on a cluster; every node needs it.
    # It brings pyarrow, whose filesystems read and write s3:// gs:// file:// URIs (storage.py).
    # boto3: the multipart uploads a killed writer left on S3 are found and aborted (multipart.py)
    "ray": ["ray[data]==2.60.0", "boto3>=1.28"],
    # LaMa and MI-GAN removal run their published ONNX exports (generate/removal.py)
    "remove": ["onnxruntime==1.31.1"],
    # soft edges (`--matte`): closed-form matting and foreground estimation, no weights (matte/)
    "matte": ["pymatting==1.1.16"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
EXTRAS["test"] = ["pytest>=8", "pytest-timeout", "hypothesis>=6", "sd-parsers==0.6", "gradio-client", "playwright",
                   "moto[server,s3]==5.2.5",  # a fake S3 server on 127.0.0.1 for the s3:// tests
                   "webuiapi==0.9.17", "httpx"]  # a real WebUI API client, and raw HTTP, against `serve`

setup(
    name="editanything",
    version="0.1.0",
    description="Edit photos by segment and regenerate: text-described object edits, click-to-mask UI, batch sketches",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["editanything", "editanything.*"]),
    package_data={"editanything.generate": ["configs/*.yaml"], "editanything.models": ["models.json"],
                  "editanything.edges": ["calibration/*.jpg", "calibration/README.md"]},
    install_requires=["numpy>=1.26", "opencv-python==5.0.0.93", "pillow>=10", "tqdm>=4.60", "huggingface-hub==2.4.0"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["editanything=editanything.cli:main"]},
    license="Apache-2.0",
)
