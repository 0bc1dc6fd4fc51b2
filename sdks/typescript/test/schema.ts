/**
 * A small JSON Schema (2020-12) validator for the keywords `docs/events.schema.json` uses — enough to check
 * every event the tests see against the one schema, without a runtime dependency.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";

import { repoRoot } from "./harness.js";

type Schema = boolean | Record<string, any>;

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

/** Validates values against a schema document; `validate` returns what is wrong (empty: valid). */
export class Validator {
  constructor(readonly root: Record<string, any>) {}

  private resolve(ref: string): Schema {
    if (!ref.startsWith("#/")) throw new Error(`only local $refs are supported: ${ref}`);
    return ref
      .slice(2)
      .split("/")
      .reduce((node: any, key) => node[key], this.root) as Schema;
  }

  /** Every violation of `schema` (default: the root) by `value`, as `path: message` lines. */
  validate(value: unknown, schema: Schema = this.root, path = "$"): string[] {
    if (schema === true) return [];
    if (schema === false) return [`${path}: nothing is allowed here`];
    const errors: string[] = [];
    const s = schema;
    if (s.$ref) errors.push(...this.validate(value, this.resolve(s.$ref), path));
    if (s.type !== undefined) {
      const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
      if (!types.some((t) => hasType(value, t))) errors.push(`${path}: expected ${types.join("|")}, got ${typeOf(value)}`);
    }
    if ("const" in s && JSON.stringify(value) !== JSON.stringify(s.const)) {
      errors.push(`${path}: expected ${JSON.stringify(s.const)}`);
    }
    if (s.enum && !s.enum.some((v: unknown) => JSON.stringify(v) === JSON.stringify(value))) {
      errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`);
    }
    if (typeof value === "number" && s.minimum !== undefined && value < s.minimum) {
      errors.push(`${path}: ${value} < ${s.minimum}`);
    }
    if (typeof value === "string") {
      if (s.minLength !== undefined && value.length < s.minLength) errors.push(`${path}: shorter than ${s.minLength}`);
      if (s.format === "date-time" && !DATE_TIME.test(value)) errors.push(`${path}: not an RFC 3339 date-time: ${value}`);
    }
    for (const sub of s.allOf ?? []) errors.push(...this.validate(value, sub, path));
    if (s.oneOf) errors.push(...this.oneOf(value, s, path));
    if (Array.isArray(value) && s.items !== undefined) {
      value.forEach((item, i) => errors.push(...this.validate(item, s.items, `${path}[${i}]`)));
    }
    if (typeOf(value) === "object") {
      const object = value as Record<string, unknown>;
      for (const key of s.required ?? []) if (!(key in object)) errors.push(`${path}: missing ${key}`);
      const properties: Record<string, Schema> = s.properties ?? {};
      for (const [key, item] of Object.entries(object)) {
        if (key in properties) errors.push(...this.validate(item, properties[key]!, `${path}.${key}`));
        else if (s.additionalProperties !== undefined) {
          errors.push(...this.validate(item, s.additionalProperties, `${path}.${key}`).map((e) => `${e} (additional property)`));
        }
        if (s.propertyNames) errors.push(...this.validate(key, s.propertyNames, `${path}{${key}}`));
      }
    }
    return errors;
  }

  private oneOf(value: unknown, s: Record<string, any>, path: string): string[] {
    const results = (s.oneOf as Schema[]).map((sub) => this.validate(value, sub, path));
    const matches = results.filter((r) => r.length === 0).length;
    if (matches === 1) return [];
    if (matches > 1) return [`${path}: matches ${matches} of oneOf, expected exactly one`];
    // Report the errors of the branch the discriminator names, which is what a reader wants to see.
    const tag = s.discriminator?.propertyName;
    const key = tag && typeOf(value) === "object" ? (value as Record<string, unknown>)[tag] : undefined;
    const ref = typeof key === "string" ? s.discriminator.mapping?.[key] : undefined;
    if (ref) return this.validate(value, { $ref: ref }, path);
    const closest = results.reduce((a, b) => (b.length < a.length ? b : a));
    return [`${path}: matches none of oneOf`, ...closest];
  }
}

let events: Validator | undefined;

/** The validator of `docs/events.schema.json`. */
export function eventValidator(): Validator {
  events ??= new Validator(JSON.parse(readFileSync(join(repoRoot(), "docs", "events.schema.json"), "utf8")));
  return events;
}
