"""The preview proxy: HTTP and WebSocket requests for a sandbox's published port, relayed to the app listening
there over a connection the sandbox's supervisor opened and passed to the server (``cove.guest.ports``).

Everything the app sends back is hostile input to the root server: response heads are bounded in size, header
count and time, bodies are streamed in bounded pieces (never held whole) with back-pressure both ways, and a slow
or endless response ties up nothing but its own request.
"""
