/**
 * What may never reach a log line: a full payment code or anything that looks like a card number. Every
 * run of 12 or more digits (also with spaces or dashes between them) keeps its first two and last two
 * digits and loses the rest.
 */
export function redact(text: string): string {
  return text.replace(/\d(?:[ -]?\d){11,}/g, (run) => {
    const digits = run.replace(/[ -]/g, '');
    return `${digits.slice(0, 2)}${'*'.repeat(digits.length - 4)}${digits.slice(-2)}`;
  });
}
