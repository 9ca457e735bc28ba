/**
 * SMS marketing consent in the checkout contact step.
 *
 * Renders Shopify's own consent components (policy "sms-marketing"): Shopify stores the
 * buyer's answer on the customer, so no network call is made from here. When the buyer has
 * not given a phone number as their contact, the consent phone field collects one.
 */
import '@shopify/ui-extensions/preact';
import {render} from 'preact';
import {useState} from 'preact/hooks';

export default async () => {
  render(<SmsConsent />, document.body);
};

/** A merchant setting from the extension's settings, or undefined when left empty. */
function merchantSetting(key: string): string | undefined {
  const value = shopify.settings.value[key];
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function SmsConsent() {
  const [optedIn, setOptedIn] = useState(false);
  const contactPhone = shopify.buyerIdentity?.phone.value;
  const brand = shopify.shop.name;

  const label = merchantSetting('checkbox_label') ?? shopify.i18n.translate('checkboxLabel');
  const disclosure =
    merchantSetting('disclosure') ?? shopify.i18n.translate('disclosure', {brand});

  return (
    <s-stack gap="small-300">
      <s-consent-checkbox
        policy="sms-marketing"
        label={label}
        onChange={(event: Event) => {
          const target = event.currentTarget as HTMLInputElement | null;
          setOptedIn(Boolean(target?.checked));
        }}
      />
      {optedIn && !contactPhone ? (
        <s-consent-phone-field
          policy="sms-marketing"
          label={shopify.i18n.translate('phoneLabel')}
          autocomplete="tel"
          type="mobile"
          required
        />
      ) : null}
      <s-paragraph type="small" color="subdued">
        {disclosure}
      </s-paragraph>
    </s-stack>
  );
}
