// Reading a request body with the size limit enforced while reading, not after.
import { fail, ok, type Result } from "../protocol/failures";
import { decodeUtf8 } from "../protocol/codec";

export interface ReadBody {
  bytes: Uint8Array<ArrayBuffer>;
  text: string;
}

export function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const media = header.split(";", 1)[0]!.trim().toLowerCase();
  return media === "application/json";
}

export async function readBodyLimited(request: Request, limit: number): Promise<Result<ReadBody>> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared)) {
    if (Number(declared) > limit) return fail({ kind: "body-too-large", limit });
    // HTTP framing delivers exactly the declared length, within the limit: read it in one go (a chunk at a
    // time costs a promise per chunk). The check after is for a Request built in code, not off the wire.
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > limit) return fail({ kind: "body-too-large", limit });
    return decoded(bytes);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        return fail({ kind: "body-too-large", limit });
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return decoded(bytes);
}

function decoded(bytes: Uint8Array<ArrayBuffer>): Result<ReadBody> {
  const text = decodeUtf8(bytes);
  if (text === null) return fail({ kind: "bad-request", message: "body is not valid UTF-8" });
  return ok({ bytes, text });
}
