"""Channel type ids, exactly the original One API's (0-57), so imported databases keep meaning.

`protocol` says which upstream wire format the type speaks; `default_base_url` is the
provider's public endpoint. Types whose native protocol is not implemented yet are listed with
protocol "unsupported" and are refused when a channel of that type is saved.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


@dataclass(frozen=True)
class ChannelTypeInfo:
    name: str
    default_base_url: str
    protocol: str  # an adaptor name in relay.adaptors.ADAPTORS, or "unsupported" for now


OPENAI = "openai"
ANTHROPIC = "anthropic"
GEMINI = "gemini"
UNSUPPORTED = "unsupported"

CHANNEL_TYPES: dict[int, ChannelTypeInfo] = {
    0: ChannelTypeInfo("Unknown", "", OPENAI),
    1: ChannelTypeInfo("OpenAI", "https://api.openai.com", OPENAI),
    2: ChannelTypeInfo("API2D", "https://oa.api2d.net", OPENAI),
    3: ChannelTypeInfo("Azure", "", "azure"),
    4: ChannelTypeInfo("CloseAI", "https://api.closeai-proxy.xyz", OPENAI),
    5: ChannelTypeInfo("OpenAI-SB", "https://api.openai-sb.com", OPENAI),
    6: ChannelTypeInfo("OpenAIMax", "https://api.openaimax.com", OPENAI),
    7: ChannelTypeInfo("OhMyGPT", "https://api.ohmygpt.com", OPENAI),
    8: ChannelTypeInfo("Custom", "", OPENAI),
    9: ChannelTypeInfo("Ails", "https://api.caipacity.com", OPENAI),
    10: ChannelTypeInfo("AIProxy", "https://api.aiproxy.io", OPENAI),
    11: ChannelTypeInfo("PaLM", "https://generativelanguage.googleapis.com", UNSUPPORTED),
    12: ChannelTypeInfo("API2GPT", "https://api.api2gpt.com", OPENAI),
    13: ChannelTypeInfo("AIGC2D", "https://api.aigc2d.com", OPENAI),
    14: ChannelTypeInfo("Anthropic", "https://api.anthropic.com", ANTHROPIC),
    15: ChannelTypeInfo("Baidu", "https://aip.baidubce.com", UNSUPPORTED),
    16: ChannelTypeInfo("Zhipu", "https://open.bigmodel.cn", UNSUPPORTED),
    17: ChannelTypeInfo("Ali", "https://dashscope.aliyuncs.com", UNSUPPORTED),
    18: ChannelTypeInfo("Xunfei", "", UNSUPPORTED),
    19: ChannelTypeInfo("AI360", "https://ai.360.cn", OPENAI),
    20: ChannelTypeInfo("OpenRouter", "https://openrouter.ai/api", OPENAI),
    21: ChannelTypeInfo("AIProxyLibrary", "https://api.aiproxy.io", UNSUPPORTED),
    22: ChannelTypeInfo("FastGPT", "https://fastgpt.run/api/openapi", OPENAI),
    23: ChannelTypeInfo("Tencent", "https://hunyuan.tencentcloudapi.com", UNSUPPORTED),
    24: ChannelTypeInfo("Gemini", "https://generativelanguage.googleapis.com", GEMINI),
    25: ChannelTypeInfo("Moonshot", "https://api.moonshot.cn", OPENAI),
    26: ChannelTypeInfo("Baichuan", "https://api.baichuan-ai.com", OPENAI),
    27: ChannelTypeInfo("Minimax", "https://api.minimax.chat", OPENAI),
    28: ChannelTypeInfo("Mistral", "https://api.mistral.ai", OPENAI),
    29: ChannelTypeInfo("Groq", "https://api.groq.com/openai", OPENAI),
    30: ChannelTypeInfo("Ollama", "http://localhost:11434", OPENAI),
    31: ChannelTypeInfo("LingYiWanWu", "https://api.lingyiwanwu.com", OPENAI),
    32: ChannelTypeInfo("StepFun", "https://api.stepfun.com", OPENAI),
    33: ChannelTypeInfo("AWS Bedrock", "", "bedrock"),
    34: ChannelTypeInfo("Coze", "https://api.coze.com", UNSUPPORTED),
    35: ChannelTypeInfo("Cohere", "https://api.cohere.ai", UNSUPPORTED),
    36: ChannelTypeInfo("DeepSeek", "https://api.deepseek.com", OPENAI),
    37: ChannelTypeInfo("Cloudflare", "https://api.cloudflare.com", UNSUPPORTED),
    38: ChannelTypeInfo("DeepL", "https://api-free.deepl.com", UNSUPPORTED),
    39: ChannelTypeInfo("TogetherAI", "https://api.together.xyz", OPENAI),
    40: ChannelTypeInfo("Doubao", "https://ark.cn-beijing.volces.com", OPENAI),
    41: ChannelTypeInfo("Novita", "https://api.novita.ai/v3/openai", OPENAI),
    42: ChannelTypeInfo("VertexAI", "https://aiplatform.googleapis.com", "vertex"),
    43: ChannelTypeInfo("Proxy", "", UNSUPPORTED),
    44: ChannelTypeInfo("SiliconFlow", "https://api.siliconflow.cn", OPENAI),
    45: ChannelTypeInfo("xAI", "https://api.x.ai", OPENAI),
    46: ChannelTypeInfo("Replicate", "https://api.replicate.com/v1/models/", UNSUPPORTED),
    47: ChannelTypeInfo("BaiduV2", "https://qianfan.baidubce.com", OPENAI),
    48: ChannelTypeInfo("XunfeiV2", "https://spark-api-open.xf-yun.com", OPENAI),
    49: ChannelTypeInfo("AliBailian", "https://dashscope.aliyuncs.com", OPENAI),
    50: ChannelTypeInfo("OpenAICompatible", "", OPENAI),
    51: ChannelTypeInfo("GeminiOpenAICompatible", "https://generativelanguage.googleapis.com/v1beta/openai", OPENAI),
    52: ChannelTypeInfo("ClaudeCompatible", "", ANTHROPIC),
    53: ChannelTypeInfo("Copilot", "https://api.githubcopilot.com", UNSUPPORTED),
    54: ChannelTypeInfo("Fireworks", "https://api.fireworks.ai/inference", OPENAI),
    55: ChannelTypeInfo("NVIDIA", "https://integrate.api.nvidia.com/v1", OPENAI),
    56: ChannelTypeInfo("Cerebras", "https://api.cerebras.ai", OPENAI),
    57: ChannelTypeInfo("DeepInfra", "https://api.deepinfra.com/v1/openai", OPENAI),
}

ChannelType = models.IntegerChoices(  # type: ignore[misc]
    "ChannelType", [(info.name.replace(" ", "_").replace("-", "_").upper(), (tid, info.name)) for tid, info in CHANNEL_TYPES.items()]
)


def type_info(type_id: int) -> ChannelTypeInfo:
    return CHANNEL_TYPES.get(type_id, CHANNEL_TYPES[0])
