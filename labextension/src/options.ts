// The run options form: one field per property of the sidebar's settings schema (schema/plugin.json, generated from
// jupyter_medagent/contracts/options.py), so every option the server accepts can be set here. A change is saved in
// the user's settings, so the choices persist; a run re-attached to shows its own options without saving them.
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { h } from './dom';

export type OptionValue = string | number | boolean | string[] | null;

interface IField {
  node: HTMLElement;
  read(): OptionValue;
  write(value: OptionValue): void;
}

type Input = HTMLInputElement | HTMLSelectElement;

export class OptionsForm {
  readonly node = h('details', { className: 'jp-MedAgent-options' }, h('summary', {}, 'Run options'));
  private fields = new Map<string, IField>();
  private settings: ISettingRegistry.ISettings | null = null;

  // `shownElsewhere`: options the sidebar shows with widgets of its own; they are saved through `save` too.
  constructor(
    private shownElsewhere: string[],
    private onError: (message: string) => void
  ) {}

  use(settings: ISettingRegistry.ISettings): void {
    this.settings = settings;
    for (const [name, property] of Object.entries(settings.schema.properties ?? {})) {
      if (this.shownElsewhere.includes(name) || this.fields.has(name)) {
        continue;
      }
      const field = makeField(name, property);
      field.node.addEventListener('change', () => this.save(name, field.read()));
      this.fields.set(name, field);
      this.node.append(field.node);
    }
    this.load();
    settings.changed.connect(() => this.load());
  }

  // The saved value of an option (undefined before the settings have loaded).
  saved(name: string): OptionValue | undefined {
    return this.settings?.get(name).composite as OptionValue | undefined;
  }

  save(name: string, value: OptionValue): void {
    this.settings?.set(name, value).catch(error => this.onError(`Could not save ${name}: ${(error as Error).message}`));
  }

  // What a run started now gets, by option name.
  values(): Record<string, OptionValue> {
    return Object.fromEntries(Array.from(this.fields, ([name, field]) => [name, field.read()]));
  }

  // The options of a run being shown (not saved).
  show(options: Record<string, OptionValue>): void {
    for (const [name, field] of this.fields) {
      if (name in options) {
        field.write(options[name]);
      }
    }
  }

  private load(): void {
    for (const [name, field] of this.fields) {
      field.write(this.saved(name) ?? null);
    }
  }
}

function types(property: ISettingRegistry.IProperty): string[] {
  return ([] as string[]).concat(property.type ?? []);
}

function makeField(name: string, property: ISettingRegistry.IProperty): IField {
  const nullable = types(property).includes('null');
  const kind = types(property).find(t => t !== 'null') ?? 'string';
  const attrs = { className: 'jp-MedAgent-option', 'data-option': name };
  const label = (input: Input, switchLike = false) =>
    h(
      'label',
      { className: switchLike ? 'jp-MedAgent-switch' : '', title: property.description ?? '' },
      ...(switchLike ? [input, ` ${property.title ?? name}`] : [property.title ?? name, input])
    );
  const choices = property.enum as string[] | undefined;
  if (kind === 'boolean') {
    const box = h('input', { ...attrs, type: 'checkbox' });
    return { node: label(box, true), read: () => box.checked, write: v => (box.checked = v === true) };
  }
  if (choices) {
    const select = h('select', attrs, ...(nullable ? [h('option', { value: '' }, '(default)')] : []));
    select.append(...choices.map(c => h('option', { value: c }, c)));
    return {
      node: label(select),
      read: () => (select.value === '' && nullable ? null : select.value),
      write: v => (select.value = v === null ? '' : String(v))
    };
  }
  const numeric = kind === 'integer' || kind === 'number';
  const input = h('input', { ...attrs, type: numeric ? 'number' : 'text' });
  if (kind === 'integer') {
    input.step = '1';
  }
  const blank = nullable ? null : (property.default as OptionValue);
  const read = (): OptionValue => {
    const text = input.value.trim();
    if (kind === 'array') {
      return text
        .split(',')
        .map(item => item.trim())
        .filter(item => item !== '');
    }
    if (text === '') {
      return blank;
    }
    return numeric ? Number(text) : text;
  };
  const write = (value: OptionValue) => {
    input.value = value === null ? '' : Array.isArray(value) ? value.join(', ') : String(value);
  };
  if (kind === 'array') {
    input.placeholder = 'comma-separated';
  }
  return { node: label(input), read, write };
}
