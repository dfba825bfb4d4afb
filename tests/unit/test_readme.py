"""The README's configuration example must stay a configuration that loads."""

from __future__ import annotations

import re
from pathlib import Path

from cometgate.settings import AnthropicProviderSettings, GeminiProviderSettings, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_config_example_loads(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    example = next(block for block in re.findall(r"```yaml\n(.*?)```", text, re.S)
                   if "providers:" in block)
    config = tmp_path / "cometgate.yaml"
    config.write_text(example, encoding="utf-8")
    env = {name: "secret" for name in re.findall(r"env:([A-Z0-9_]+)", example)}
    settings = load_settings(config, env={**env, "HOME": str(tmp_path)})
    assert isinstance(settings.provider("google"), GeminiProviderSettings)
    assert isinstance(settings.provider("claude"), AnthropicProviderSettings)
    fast = settings.model("fast")
    assert fast is not None and len(fast.candidates) == 3
