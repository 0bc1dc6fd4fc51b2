/**
 * A table of things, one row each. In a narrow window it becomes a list of cards, each cell under its column's
 * name (the `data-label` the stylesheet shows).
 */

import type { ComponentChildren } from "preact";

export interface Column<T> {
  label: string;
  /** Named for assistive technology only (a column of buttons, say). */
  silent?: boolean;
  cell: (row: T) => ComponentChildren;
}

export function Table<T>(props: { columns: Column<T>[]; rows: readonly T[]; keyOf: (row: T) => string }) {
  return (
    <table class="table responsive">
      <thead>
        <tr>
          {props.columns.map((column) => (
            <th key={column.label} scope="col">
              {column.silent ? <span class="sr-only">{column.label}</span> : column.label}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.map((row) => (
          <tr key={props.keyOf(row)}>
            {props.columns.map((column) => (
              <td key={column.label} data-label={column.label}>
                {column.cell(row)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
