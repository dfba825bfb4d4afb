import pytest

from cometgate.dialects.gemini.paths import gemini_path


@pytest.mark.parametrize(
    ("canonical", "gemini"),
    [
        ("params.top_k", "generationConfig.topK"),
        ("params.presence_penalty", "generationConfig.presencePenalty"),
        ("thinking.level", "generationConfig.thinkingConfig.thinkingLevel"),
        ("messages[1].parts[0].signature", "contents[1].parts[0].thoughtSignature"),
        ("messages[3].parts[2]", "contents[3].parts[2]"),
        ("system[0]", "systemInstruction[0]"),
        ("something.else", "something.else"),
    ],
)
def test_canonical_paths_get_gemini_names(canonical: str, gemini: str) -> None:
    assert gemini_path(canonical) == gemini
