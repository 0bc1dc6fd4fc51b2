/**
 * The Inspector: Cove's web page to watch, steer and approve agents. Served by `cove serve` at /ui/ (see
 * cove/api/inspector.py); built by `make ui` from this folder.
 */

import "./styles.css";

import { render } from "preact";
import { useMemo, useState } from "preact/hooks";

import { Api } from "./api/client.js";
import { type Credentials, forgetCredentials, loadCredentials, saveCredentials, takeLinkToken } from "./api/credentials.js";
import { followLink, href, type Route, useRoute } from "./lib/router.js";
import { SandboxesView } from "./views/SandboxesView.js";
import { SandboxView } from "./views/SandboxView.js";
import { SessionView } from "./views/session/SessionView.js";
import { SignIn } from "./views/SignIn.js";

function Breadcrumbs({ route }: { route: Route }) {
  if (route.view !== "sandbox" && route.view !== "session") return null;
  return (
    <nav aria-label="Breadcrumbs" class="breadcrumbs">
      <a href={href({ view: "sandboxes" })}>Sandboxes</a>
      <span aria-hidden="true">/</span>
      <a href={href({ view: "sandbox", sandboxId: route.sandboxId, tab: "sessions" })} aria-current={route.view === "sandbox" ? "page" : undefined}>
        {route.sandboxId}
      </a>
      {route.view === "session" ? (
        <>
          <span aria-hidden="true">/</span>
          <span aria-current="page">{route.sessionId}</span>
        </>
      ) : null}
    </nav>
  );
}

function View({ route, api, credentials }: { route: Route; api: Api; credentials: Credentials }) {
  switch (route.view) {
    case "sandboxes":
      return <SandboxesView api={api} />;
    case "sandbox":
      return <SandboxView api={api} credentials={credentials} sandboxId={route.sandboxId} tab={route.tab} />;
    case "session":
      return <SessionView api={api} credentials={credentials} sandboxId={route.sandboxId} sessionId={route.sessionId} />;
    case "missing":
      return (
        <section class="page">
          <h1>Not found</h1>
          <p>
            Nothing lives at <code>{route.path}</code>. <a href={href({ view: "sandboxes" })}>See the sandboxes.</a>
          </p>
        </section>
      );
  }
}

function App() {
  const [credentials, setCredentials] = useState(loadCredentials);
  const [reason, setReason] = useState<string | null>(null);
  const route = useRoute();

  const api = useMemo(() => {
    if (!credentials) return null;
    const client = new Api(credentials);
    client.onUnauthorized = () => {
      forgetCredentials();
      setReason("The server no longer accepts this credential: sign in again.");
      setCredentials(null);
    };
    return client;
  }, [credentials]);

  if (!credentials || !api) {
    return (
      <SignIn
        reason={reason}
        onSignedIn={(signedIn) => {
          saveCredentials(signedIn);
          setReason(null);
          setCredentials(signedIn);
        }}
      />
    );
  }
  return (
    <div class="app" onClick={followLink}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="bar">
        <a class="brand" href={href({ view: "sandboxes" })}>
          Cove Inspector
        </a>
        <Breadcrumbs route={route} />
        <button
          type="button"
          class="sign-out"
          onClick={() => {
            forgetCredentials();
            setCredentials(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main">
        <View route={route} api={api} credentials={credentials} />
      </main>
    </div>
  );
}

// A shared link signs this tab in with its token, in place of any key it held. Until the server says what the
// token may do, the page offers only what every token may: reading.
const linkToken = takeLinkToken();
if (linkToken) saveCredentials({ kind: "token", secret: linkToken, scopes: ["read"] });

render(<App />, document.getElementById("app")!);
