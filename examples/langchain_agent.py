"""A LangChain agent that answers questions about your documents with the mmrag retriever tool.

The agent is a plain tool-calling loop on langchain-core (``bind_tools``, then run each tool
call and hand the result back), so it works with any chat model that supports tool calling. It
indexes a folder (the bundled sample by default; already-indexed files are skipped), asks the
question, and prints the answer and the pages / video seconds it was built from.

    python examples/langchain_agent.py "How much did ACME Solar's revenue grow in 2024?"
    python examples/langchain_agent.py --tiny            # offline: a tiny random embedder (CI)
    python examples/langchain_agent.py --config mmrag.toml --data ~/reports "What changed?"

Chat model: ``ChatOpenAI`` when ``OPENAI_API_KEY`` is set and ``langchain-openai`` is installed
(model from ``MMRAG_AGENT_MODEL``, default ``gpt-4o-mini``), else ``ChatAnthropic`` with
``ANTHROPIC_API_KEY`` and ``langchain-anthropic``; neither is an mmrag dependency. Without a key
(or with ``--fake``) an offline stand-in runs instead: it calls the tool with the question and
answers by quoting the best passage it was given. It is not a language model, but every other
step (indexing, retrieval, the tool, the agent loop, citations) is the real code path.
``--images`` also shows the retrieved page images to a (multimodal) real model.

With ``--tiny`` the embedder is a tiny random ColModernVBert built on the spot
(``mmrag.testing.zoo``): nothing is downloaded, and its rankings are meaningless.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool

from mmrag import MmragRetriever, Pipeline, PipelineConfig

SAMPLE_DATA = Path(__file__).resolve().parent / "data"
DEFAULT_QUESTION = "How much did ACME Solar's revenue grow in 2024?"
SYSTEM_PROMPT = (
    "You answer questions about the user's documents. Always search them with the "
    "search_documents tool first, answer only from what it returns, and cite the numbered "
    "results you use, like [1]. If the results do not contain the answer, say so."
)
_HEADER = re.compile(r"^\[(\d+)\] (.+?)(?: \(score [^)]*\))?$")


class OfflineChatModel(BaseChatModel):
    """A stand-in for a chat model, for running without a provider key (tests, CI, demos).

    It is not a language model. First turn: it calls the bound tool with the user's question.
    After a tool result: it answers by quoting the first numbered result that has text, citing
    its number (or lists the results when none has text).

    Example:
        >>> model = OfflineChatModel().bind_tools([tool])                 # doctest: +SKIP
        >>> model.invoke([HumanMessage("What is X?")]).tool_calls[0]["args"]  # doctest: +SKIP
        {'query': 'What is X?'}
    """

    tool_name: str = "search_documents"

    @property
    def _llm_type(self) -> str:
        return "mmrag-offline-stand-in"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> OfflineChatModel:  # type: ignore[override]
        names = [getattr(t, "name", None) for t in tools]
        if not names or names[0] is None:
            raise ValueError("OfflineChatModel needs one named tool (a BaseTool) to call")
        return self.model_copy(update={"tool_name": names[0]})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:
            message = AIMessage(content=_quote_best(str(results[-1].content)))
        else:
            question = next(
                (str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)), ""
            )
            message = AIMessage(
                content="",
                tool_calls=[{"name": self.tool_name, "args": {"query": question}, "id": "call_1"}],
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


def _quote_best(tool_output: str) -> str:
    """The stand-in's answer: the first result with text, quoted with its number."""
    results: list[tuple[str, str, list[str]]] = []
    for line in tool_output.splitlines():
        header = _HEADER.match(line)
        if header:
            results.append((header.group(1), header.group(2), []))
        elif results:
            results[-1][2].append(line)
    for number, _citation, lines in results:
        text = " ".join(" ".join(lines).split())
        if text and not text.startswith("(no text"):
            sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0][:300]
            return f"The best-matching passage says: “{sentence}” [{number}]"
    if results:
        listed = "; ".join(f"[{n}] {c}" for n, c, _ in results)
        return f"The best matches have no text to quote; see their images: {listed}"
    return "The search found nothing relevant in the documents."


def choose_chat_model(force_offline: bool = False) -> tuple[BaseChatModel, str]:
    """A provider chat model when a key and its package are present, else the stand-in."""
    if not force_offline:
        model_name = os.environ.get("MMRAG_AGENT_MODEL")
        if os.environ.get("OPENAI_API_KEY"):
            try:
                from langchain_openai import ChatOpenAI
            except ImportError:
                print(
                    "OPENAI_API_KEY is set but langchain-openai is not installed", file=sys.stderr
                )
            else:
                name = model_name or "gpt-4o-mini"
                return ChatOpenAI(model=name, temperature=0), f"OpenAI {name}"
        if os.environ.get("ANTHROPIC_API_KEY"):
            try:
                from langchain_anthropic import ChatAnthropic
            except ImportError:
                print(
                    "ANTHROPIC_API_KEY is set but langchain-anthropic is not installed",
                    file=sys.stderr,
                )
            else:
                name = model_name or "claude-3-5-haiku-latest"
                return ChatAnthropic(model=name, temperature=0), f"Anthropic {name}"
    return OfflineChatModel(), "offline stand-in (no provider key; not a language model)"


def _image_message(documents: Sequence[Document], limit: int = 3) -> HumanMessage | None:
    blocks: list[str | dict[str, Any]] = []
    for number, doc in enumerate(documents[:limit], 1):
        data, mime = doc.metadata.get("image_base64"), doc.metadata.get("image_mime")
        if data and mime:
            blocks.append({"type": "text", "text": f"Image of result [{number}]:"})
            blocks.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}})
    return HumanMessage(content=blocks) if blocks else None


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in message.content
        if isinstance(b, str) or b.get("type") == "text"
    )


def run_agent(
    model: BaseChatModel,
    tool: BaseTool,
    question: str,
    *,
    max_steps: int = 4,
    show_images: bool = False,
) -> tuple[str, list[tuple[str, list[Document]]]]:
    """Answer ``question``: let the model call ``tool`` until it answers (at most
    ``max_steps`` model turns). Returns the answer and each search the agent ran, as
    ``(query, documents)`` (the documents numbered [1], [2] … in that search's result)."""
    agent = model.bind_tools([tool])
    messages: list[BaseMessage] = [SystemMessage(SYSTEM_PROMPT), HumanMessage(question)]
    searches: list[tuple[str, list[Document]]] = []
    for _ in range(max_steps):
        reply = agent.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return _text(reply), searches
        for call in reply.tool_calls:
            result = tool.invoke({**call, "type": "tool_call"})  # a ToolMessage
            messages.append(result)
            found = list(result.artifact or [])
            searches.append((str(call["args"].get("query", "")), found))
            image_message = _image_message(found) if show_images else None
            if image_message is not None:
                messages.append(image_message)
    return "(the agent did not answer within its step limit)", searches


def build_pipeline(args: argparse.Namespace) -> Pipeline:
    """The pipeline the flags describe: ``--config``, ``--tiny``, or the default model."""
    workdir = Path(args.workdir).expanduser().resolve()
    if args.config:
        return Pipeline(PipelineConfig.load(args.config))
    config = PipelineConfig()
    config.store.path = str(workdir / "index")
    if args.tiny:
        from mmrag.testing.zoo import build

        tiny = workdir / "tiny-models" / "colmodernvbert"
        if not (tiny / "mmrag_tiny.json").is_file():
            print(f"building a tiny random colmodernvbert in {tiny} (rankings are meaningless)")
            build("colmodernvbert", tiny)
        config = PipelineConfig.from_dict(
            {
                "embedder": {
                    "type": "colmodernvbert",
                    "init_parameters": {"model": str(tiny), "device": "cpu"},
                },
                "ingest": {"dpi": 72, "video_fps": 0.5},
                "store": {"path": str(workdir / "index-tiny")},
            }
        )
    return Pipeline(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--config", help="a pipeline config (TOML/JSON); its store is used")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random embedder (offline)")
    parser.add_argument("--data", default=str(SAMPLE_DATA), help="folder or files to index first")
    parser.add_argument("--no-index", action="store_true", help="search the index as it is")
    parser.add_argument(
        "--workdir",
        default=str(Path("~/.cache/mmrag/langchain-agent")),
        help="where the index (without --config) and the tiny model are kept",
    )
    parser.add_argument("--k", type=int, default=4, help="documents per search")
    parser.add_argument("--fake", action="store_true", help="use the offline stand-in model")
    parser.add_argument("--images", action="store_true", help="show page images to the model")
    args = parser.parse_args(argv)

    model, label = choose_chat_model(force_offline=args.fake)
    with build_pipeline(args) as pipe:
        if not args.no_index:
            report = pipe.index([args.data])
            print(f"index: {report.summary()}")
            for failure in report.failed:
                print(f"  FAILED {failure.source}: {failure.reason}")
        retriever = MmragRetriever(
            pipeline=pipe, k=args.k, image="base64" if args.images else "none"
        )
        tool = retriever.as_tool()
        print(f"chat model: {label}")
        print(f"\nQuestion: {args.question}")
        answer, searches = run_agent(model, tool, args.question, show_images=args.images)

    print(f"\nAnswer: {answer}")
    if not searches:
        print("\nCitations: none (the model answered without searching)")
    for query, documents in searches:
        print(f"\nCitations (search: {query!r}):")
        if not documents:
            print("  (no results)")
        for number, doc in enumerate(documents, 1):
            print(f"  [{number}] {doc.metadata['citation']}  (score {doc.metadata['score']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
