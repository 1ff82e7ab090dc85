"""Regenerate the real-tokenizer test fixtures in nbs/fixtures/tokenizers/ from llama.cpp's vocab-only GGUF files.

The `llama-cpp-python` source distribution in the package registry ships llama.cpp's vocab-only GGUF files; transformers
converts them to fast tokenizers with the `gguf` package. Run from the repository root (needs the registry once):

    pip install gguf
    python tools/make_tokenizer_fixtures.py            # downloads the sdist (76 MB) into a temporary folder
    python tools/make_tokenizer_fixtures.py SDIST.tar.gz  # or reuse a downloaded copy

Writes `llama2/` (LLaMA-2 / Vicuna SentencePiece, 32000 ids: the tokenizer of LLaVA-1.5 and LLaVA-NeXT-Vicuna),
`qwen2/` (Qwen2 / Qwen2.5 byte-level BPE, 151936 ids: Qwen2-VL, Qwen2.5-VL) and `llama3/` (Llama-3 byte-level BPE,
128256 ids: Llama-3.2-Vision (mllama), Idefics3-8B-Llama3), each a `tokenizer.json` plus `tokenizer_config.json`.
In the Qwen2 file the vision specials are placeholders `[PAD151646]` ... at their real ids; they get their real names
here (`QWEN2_SPECIALS`). The Llama-3 conversion appends an `<|endoftext|>` at 128256 that the GGUF file does not have
(dropped: the families add their own specials from 128256 on) and adds no BOS, whereas the hub's Llama-3 tokenizers
prepend `<|begin_of_text|>` (restored). Its specials carry Llama-3.0's names; they get Llama-3.1's (`<|finetune_right_pad_id|>`
= 128004, `<|eom_id|>`, `<|python_tag|>`, the reserved ones renumbered), which Llama-3.2-Vision and Idefics3-8B-Llama3 use
(`llama31_specials`). Its merges are written as `"a b"` strings, the format's compact form.
"""
import json, subprocess, sys, tarfile, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from siu_nb.testing import rename_added_tokens  # the renaming the tests use on the Qwen2 fixture

SDIST = "llama-cpp-python==0.3.36"
FILES = {"llama2": "ggml-vocab-llama-spm.gguf", "qwen2": "ggml-vocab-qwen2.gguf", "llama3": "ggml-vocab-llama-bpe.gguf"}
LLAMA3_VOCAB = 128256  # ids of the GGUF file; Llama-3.2-Vision adds <|image|> = 128256
OUT = Path(__file__).resolve().parents[1] / "nbs" / "fixtures" / "tokenizers"
QWEN2_SPECIALS = {151646: "<|object_ref_start|>", 151647: "<|object_ref_end|>", 151648: "<|box_start|>",
                  151649: "<|box_end|>", 151650: "<|quad_start|>", 151651: "<|quad_end|>", 151652: "<|vision_start|>",
                  151653: "<|vision_end|>", 151654: "<|vision_pad|>", 151655: "<|image_pad|>", 151656: "<|video_pad|>",
                  151657: "<tool_call>", 151658: "</tool_call>", 151659: "<|fim_prefix|>", 151660: "<|fim_middle|>",
                  151661: "<|fim_suffix|>", 151662: "<|fim_pad|>", 151663: "<|repo_name|>", 151664: "<|file_sep|>"}

def _sdist(tmp):
    if len(sys.argv) > 1: return Path(sys.argv[1])
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", tmp], check=True)
    return next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))

def _extract(sdist, tmp):
    with tarfile.open(sdist) as t:
        for m in t.getmembers():
            if m.name.endswith(tuple(FILES.values())) and "/vendor/llama.cpp/models/" in m.name:
                m.name = Path(m.name).name; t.extract(m, tmp)
    missing = [f for f in FILES.values() if not (Path(tmp) / f).is_file()]
    if missing: raise SystemExit(f"{sdist} has no {missing} under vendor/llama.cpp/models/")

def _rename_qwen(folder):
    p = folder / "tokenizer.json"
    p.write_text(json.dumps(rename_added_tokens(json.loads(p.read_text()), QWEN2_SPECIALS), ensure_ascii=False, separators=(",", ":")))

def llama31_specials():
    "Llama-3.1's names of the ids 128002-128255 (Llama-3.0 names them all `<|reserved_special_token_k|>`)."
    names = {128004: "<|finetune_right_pad_id|>", 128008: "<|eom_id|>", 128010: "<|python_tag|>"}
    reserved = [i for i in range(128002, LLAMA3_VOCAB) if i not in names and i not in (128006, 128007, 128009)]
    return names | {i: f"<|reserved_special_token_{k}|>" for k, i in enumerate(reserved)}

def _fix_llama3(folder):
    p = folder / "tokenizer.json"; d = json.loads(p.read_text())
    rename_added_tokens(d, llama31_specials())
    extra = [t["content"] for t in d["added_tokens"] if t["id"] >= LLAMA3_VOCAB]
    d["added_tokens"] = [t for t in d["added_tokens"] if t["id"] < LLAMA3_VOCAB]
    for t in extra: d["model"]["vocab"].pop(t, None)
    bos = {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}
    d["post_processor"] = {"type": "TemplateProcessing", "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000], "tokens": ["<|begin_of_text|>"]}}}
    d["model"]["merges"] = [" ".join(m) for m in d["model"]["merges"]]  # byte-level pieces hold no spaces
    p.write_text(json.dumps(d, ensure_ascii=False, separators=(",", ":")))

def main():
    from transformers import AutoTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        _extract(_sdist(tmp), tmp)
        for name, f in FILES.items():
            tok = AutoTokenizer.from_pretrained(tmp, gguf_file=f)
            out = OUT / name; out.mkdir(parents=True, exist_ok=True)
            tok.save_pretrained(out)
            for extra in ("special_tokens_map.json", "chat_template.jinja"): (out / extra).unlink(missing_ok=True)
            cfg = out / "tokenizer_config.json"; c = json.loads(cfg.read_text())
            for k in ("is_local", "local_files_only"): c.pop(k, None)
            cfg.write_text(json.dumps(c, indent=2) + "\n")
            if name == "qwen2": _rename_qwen(out)
            if name == "llama3": _fix_llama3(out)
            print(out, len(AutoTokenizer.from_pretrained(out)), sum(p.stat().st_size for p in out.iterdir()) // 1024, "KiB")

if __name__ == "__main__": main()
