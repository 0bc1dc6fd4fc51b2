/**
 * The prompt box: Enter sends, Shift+Enter breaks the line (and Enter while an input method composes is the
 * composition's). A prompt sent while a turn runs waits in the session's queue; the page lists it until its turn
 * starts.
 */

import { useState } from "preact/hooks";

import { Problem } from "../../components/Problem.js";
import { useAction } from "../../lib/action.js";
import type { SessionController } from "../../session/controller.js";

export function PromptBox({ controller, disabled }: { controller: SessionController; disabled: string | null }) {
  const [text, setText] = useState("");
  const action = useAction();

  const send = async () => {
    const prompt = text.trim();
    if (!prompt || disabled) return;
    setText("");
    if (!(await action.run(() => controller.prompt(prompt)))) setText(prompt); // refused: the text is not lost
  };

  return (
    <form
      class="prompt-box"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
    >
      {controller.queued.length ? (
        <ol class="queued" aria-label="Queued prompts">
          {controller.queued.map((prompt) => (
            <li key={prompt.turn}>
              <span class="muted">Queued for turn {prompt.turn}:</span> {prompt.text}
            </li>
          ))}
        </ol>
      ) : null}
      <label for="prompt">Prompt</label>
      <div class="prompt-row">
        <textarea
          id="prompt"
          rows={3}
          value={text}
          disabled={!!disabled}
          placeholder={disabled ?? "Enter sends · Shift+Enter for a new line"}
          onInput={(event) => setText(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
              event.preventDefault();
              void send();
            }
          }}
        />
        <button type="submit" class="primary" disabled={!!disabled || !text.trim()}>
          Send
        </button>
      </div>
      <Problem error={action.error} />
    </form>
  );
}
