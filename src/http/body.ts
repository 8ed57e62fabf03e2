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
  if (declared !== null && /^[0-9]+$/.test(declared) && Number(declared) > limit) {
    return fail({ kind: "body-too-large", limit });
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
  const text = decodeUtf8(bytes);
  if (text === null) return fail({ kind: "bad-request", message: "body is not valid UTF-8" });
  return ok({ bytes, text });
}
