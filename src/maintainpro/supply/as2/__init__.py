"""AS2 (RFC 4130) transport: message layer, partner settings, receiver endpoint and sender.

mime (byte-exact MIME), smime (CMS sign/verify, encrypt/decrypt, compress), mic, headers,
partners (As2Partner), outbound (build_message), inbound (read_message), mdn (build/read/check
receipts), receiver (As2Receiver, framework-free), endpoint (FastAPI router), client (httpx).
"""
