/**
 * Permission requests waiting for an answer, kept in view above the prompt box (not in the scrolling list,
 * where one could scroll away while the agent waits on it): Approve, or Deny with a message the agent is told.
 */

import { useState } from "preact/hooks";

import { Fold } from "../../components/Fold.js";
import { Problem } from "../../components/Problem.js";
import { useAction } from "../../lib/action.js";
import type { SessionController } from "../../session/controller.js";
import type { PermissionItem } from "../../session/model.js";
import { inputText, toolTarget } from "./items.js";

function Approval({ item, controller }: { item: PermissionItem; controller: SessionController }) {
  const [message, setMessage] = useState("");
  const action = useAction();
  const titleId = `approval-${item.requestId}`;
  const answer = (decision: "allow" | "deny") => action.run(() => controller.answer(item.requestId, decision, message.trim()));

  return (
    <div class="approval" role="group" aria-labelledby={titleId}>
      <p id={titleId}>
        The agent wants to use <strong>{item.toolName}</strong> <code>{toolTarget(item.input)}</code>
      </p>
      {item.description ? <p class="muted">{item.description}</p> : null}
      <Fold id={`approval:${item.requestId}`} summary="Input">
        <pre class="approval-input">{inputText(item.input)}</pre>
      </Fold>
      <div class="approval-actions">
        <label>
          Message for the agent, if denied
          <input type="text" value={message} onInput={(e) => setMessage(e.currentTarget.value)} disabled={action.busy} />
        </label>
        <button type="button" class="primary" onClick={() => answer("allow")} disabled={action.busy}>
          Approve
        </button>
        <button type="button" class="danger" onClick={() => answer("deny")} disabled={action.busy}>
          Deny
        </button>
      </div>
      <Problem error={action.error} />
    </div>
  );
}

export function Approvals({ controller }: { controller: SessionController }) {
  const pending = [...controller.model.pending.values()];
  if (!pending.length) return null;
  return (
    <section class="approvals" aria-label="Waiting for approval">
      {pending.map((item) => (
        <Approval key={item.requestId} item={item} controller={controller} />
      ))}
    </section>
  );
}
